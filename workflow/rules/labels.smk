# Stage 'labels': Cityscapes labelIds per frame (python -m pipeline.labels).
# The mode comes from datasets.<ds>.labels.mode in config.


rule labels:
    input:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    output:
        f"{RESULTS}/{{ds}}/labels/shards/{{shard}}.json",
    params:
        results=results_dir,
        code=code_version("pipeline.labels"),
        dataset=dataset_arg("labels"),
        sequences=shard_names,
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/{{ds}}/logs/labels/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/labels/{{shard}}.tsv"
    shell:
        "python -m pipeline.labels --dataset {wildcards.ds} --dataset-json {params.dataset} --results {params.results}"
        " --sequences {params.sequences} --job-summary {output} > {log} 2>&1"
