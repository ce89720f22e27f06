# Stage 'instances': instance maps (class*1000+k) per frame (python -m pipeline.instances).
# The mode comes from datasets.<ds>.instances.mode in config.


rule instances:
    input:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    output:
        f"{RESULTS}/{{ds}}/instances/shards/{{shard}}.json",
    params:
        results=results_dir,
        code=code_version("pipeline.instances"),
        dataset=dataset_arg("instances"),
        sequences=shard_names,
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/{{ds}}/logs/instances/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/instances/{{shard}}.tsv"
    shell:
        "python -m pipeline.instances --dataset {wildcards.ds} --dataset-json {params.dataset} --results {params.results}"
        " --sequences {params.sequences} --job-summary {output} > {log} 2>&1"
