# Stage 'frames': each shard of sequences extracted to results/<ds>/frames/<seq>/ with a manifest
# (python -m pipeline.stages.frames), and the dataset's manifest from the shards' ones
# (python -m pipeline.stages.frames_manifest).


rule frames:
    input:
        frames_inputs,
    output:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    log:
        f"{RESULTS}/{{ds}}/logs/frames/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/frames/{{shard}}.tsv"
    priority: dataset_priority
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
    priority: dataset_priority
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.frames_manifest"),
    shell:
        stage_shell("pipeline.stages.frames_manifest", "{output} {input}", dataset=False)
