# Stage 'flow': forward flow t->t+1 + confidence per sequence (python -m pipeline.stages.flow).
# The mode comes from datasets.<ds>.flow.mode in config; face / pose datasets: flow of the sketch /
# pose stage's cropped frames.


rule flow:
    input:
        source_frames_inputs,
    output:
        f"{RESULTS}/{{ds}}/flow/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/flow/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/flow/{{shard}}.tsv"
    conda:
        CONDA_ENV
    resources:
        gpu=model_gpus("flow"),
    params:
        code=code_version("pipeline.stages.flow"),
        dataset=dataset_arg("flow", "sketch", "pose"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.flow", "--sequences {params.sequences} --job-summary {output}", gpu=True)
