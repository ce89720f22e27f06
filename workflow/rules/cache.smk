# Stage 'cache': each shard's frames, labels, instances and flow packed into one safetensors file,
# plus the dataset's index; the trainer's rule depends on the cache only. Face / pose datasets: the
# sketch / pose stage's cropped frames and maps (the 'condition' tensor) and their flow.


rule cache:
    input:
        cache_inputs,
    output:
        f"{RESULTS}/{{ds}}/cache/{{shard}}.safetensors",
    log:
        f"{RESULTS}/{{ds}}/logs/cache/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/cache/{{shard}}.tsv"
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.cache"),
        dataset=dataset_arg("labels", "instances", "flow", "sketch", "pose"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.cache pack", "--sequences {params.sequences} --output {output}")


rule cache_index:
    input:
        lambda w: [f"{RESULTS}/{w.ds}/cache/{shard}.safetensors" for shard in shards(w.ds)],
    output:
        f"{RESULTS}/{{ds}}/cache/index.json",
    log:
        f"{RESULTS}/{{ds}}/logs/cache_index.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.cache"),
    shell:
        stage_shell("pipeline.stages.cache index", "--output {output} {input}", dataset=False)
