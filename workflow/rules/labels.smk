# Stage 'labels': Cityscapes labelIds per frame (python -m pipeline.labels).
# The mode comes from datasets.<ds>.labels.mode in config: given, pretrained (mmseg DeepLabV3
# Cityscapes weights from the registry) or train (the DeepLabV3 of rule train_segmenter).


rule train_segmenter:
    input:
        f"{RESULTS}/{{ds}}/frames/manifest.csv",
    output:
        f"{RESULTS}/{{ds}}/segmenter/model.pt",
    params:
        results=results_dir,
        code=code_version("pipeline.train_segmenter"),
        dataset=dataset_arg("labels", "evaluate.split"),
    resources:
        gpu=1,
    threads: 2
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/{{ds}}/logs/train_segmenter.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/train_segmenter.tsv"
    shell:
        "python -m pipeline.gpu_slot --need {resources.gpu} -- python -m pipeline.train_segmenter"
        " --dataset {wildcards.ds} --dataset-json {params.dataset} --results {params.results}"
        " --out {output} > {log} 2>&1"


rule labels:
    input:
        labels_inputs,
    output:
        f"{RESULTS}/{{ds}}/labels/shards/{{shard}}.json",
    params:
        results=results_dir,
        code=code_version("pipeline.labels"),
        dataset=dataset_arg("labels"),
        sequences=shard_names,
    resources:
        gpu=model_gpus("labels"),
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/{{ds}}/logs/labels/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/labels/{{shard}}.tsv"
    shell:
        "python -m pipeline.gpu_slot --need {resources.gpu} -- python -m pipeline.labels --dataset {wildcards.ds}"
        " --dataset-json {params.dataset} --results {params.results}"
        " --sequences {params.sequences} --job-summary {output} > {log} 2>&1"
