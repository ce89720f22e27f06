# Stage 'labels': Cityscapes labelIds per frame (python -m pipeline.stages.labels).
# The mode comes from datasets.<ds>.labels.mode in config: given, pretrained (mmseg DeepLabV3
# Cityscapes weights from the registry) or train (the DeepLabV3 of rule train_segmenter).


rule train_segmenter:
    input:
        f"{RESULTS}/{{ds}}/frames/manifest.csv",
    output:
        f"{RESULTS}/{{ds}}/segmenter/model.pt",
    log:
        f"{RESULTS}/{{ds}}/logs/train_segmenter.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/train_segmenter.tsv"
    priority: dataset_priority
    conda:
        CONDA_ENV
    threads: rule_threads("train_segmenter")
    resources:
        gpu=1,
    params:
        code=code_version("pipeline.stages.train_segmenter"),
        dataset=dataset_arg("labels", "evaluate.split"),
    shell:
        stage_shell("pipeline.stages.train_segmenter", "--out {output}", gpu=True)


rule labels:
    input:
        labels_inputs,
    output:
        f"{RESULTS}/{{ds}}/labels/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/labels/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/labels/{{shard}}.tsv"
    conda:
        CONDA_ENV
    resources:
        gpu=model_gpus("labels"),
    params:
        code=code_version("pipeline.stages.labels"),
        dataset=dataset_arg("labels"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.labels", "--sequences {params.sequences} --job-summary {output}", gpu=True)
