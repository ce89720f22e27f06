"""Command-line tools that are not stages: ``fetch_weights`` (list / prefetch / verify the weights
registry's files), ``gpu_slot`` (one GPU per job for Snakemake's local runs), ``crash_harness``
(stages killed by SIGKILL at seeded points, rerun and compared), and the generators
of committed files (their shared CLI in ``generated``): ``run_schema``
(workflow/schemas/run.schema.yaml from model/options.py) and ``config_sections``
(pipeline/core/sections.py from workflow/schemas/config.schema.yaml).
"""
