# Stage 'import_official': NVIDIA's pretrained vid2vid models as checkpoints of this pipeline
# (python -m pipeline.tools.import_official; docs/official_models.md). A dataset names them under
# imported: <run> -> {model, checkpoints}; the run needs no training, and the synthesize rule takes
# results/<ds>/checkpoints/<run>/final.pt as for a trained one:
#   snakemake --cores 2 results/cityscapes/synth/official_label2city_1024_g1/synthesis.json


rule import_official:
    input:
        official_inputs,
    output:
        f"{RESULTS}/{{ds}}/checkpoints/{{run}}/final.pt",
    log:
        f"{RESULTS}/{{ds}}/logs/import_official/{{run}}.log",
    wildcard_constraints:
        run=r"official_[A-Za-z0-9_-]+",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.tools.import_official"),
        model=lambda w: imported_run(w)["model"],
        folder=lambda w: imported_run(w)["checkpoints"],
    shell:
        stage_shell(
            "pipeline.tools.import_official",
            "--model {params.model} --checkpoints {params.folder:q} --out {output}",
            dataset=False,
        )
