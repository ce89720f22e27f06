"""Command-line tools that are not stages: ``fetch_weights`` (list / prefetch / verify the weights
registry's files) and ``gpu_slot`` (one GPU per job for Snakemake's local runs).
"""
