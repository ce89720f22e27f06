# Stage 'sketch' (task face): dlib landmarks, a stable square face crop and the edge-to-face sketch
# per frame (python -m pipeline.stages.sketch); a contact sheet of frames, landmarks and sketches.


rule sketch:
    input:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    output:
        f"{RESULTS}/{{ds}}/sketch/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/sketch/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/sketch/{{shard}}.tsv"
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.sketch"),
        dataset=dataset_arg("sketch"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.sketch", "--sequences {params.sequences} --job-summary {output}")


rule sketch_contact_sheet:
    input:
        sketch_shards,
    output:
        report(f"{RESULTS}/{{ds}}/sketch/contact_sheet.png", caption="../report/contact_sheet.rst", category="Inputs"),
    log:
        f"{RESULTS}/{{ds}}/logs/sketch_contact_sheet.log",
    conda:
        CONDA_ENV
    params:
        dataset=dataset_arg("sketch"),
    shell:
        stage_shell("pipeline.stages.sketch", "--contact-sheet {output}")
