"""One module per Snakemake rule, each a CLI (``python -m pipeline.stages.<stage>``) called from the
rule's ``shell:`` (docs/stages.md). A stage imports the core, the libraries and ``model/``; no
module imports a stage.
"""
