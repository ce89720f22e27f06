"""Command-line tools that are not stages: ``fetch_weights`` (list / prefetch / verify the weights
registry's files), ``gpu_slot`` (one GPU per job for Snakemake's local runs) and
``run_schema`` (workflow/schemas/run.schema.yaml from model/options.py).
"""
