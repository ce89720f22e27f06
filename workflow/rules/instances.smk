# Stage 'instances': Cityscapes instance maps per frame (python -m pipeline.stages.instances).
# Modes: given, pretrained (torchvision COCO Mask R-CNN, masks cut by the labels) or train (the
# Mask R-CNN of rule train_instances).


rule train_instances:
    input:
        f"{RESULTS}/{{ds}}/frames/manifest.csv",
    output:
        f"{RESULTS}/{{ds}}/instance_model/model.pt",
    log:
        f"{RESULTS}/{{ds}}/logs/train_instances.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/train_instances.tsv"
    conda:
        CONDA_ENV
    threads: rule_threads("train_instances")
    resources:
        gpu=1,
    params:
        code=code_version("pipeline.stages.train_instances"),
        dataset=dataset_arg("instances", "evaluate.split"),
    shell:
        stage_shell("pipeline.stages.train_instances", "--out {output}", gpu=True)


rule instances:
    input:
        instances_inputs,
    output:
        f"{RESULTS}/{{ds}}/instances/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/instances/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/instances/{{shard}}.tsv"
    conda:
        CONDA_ENV
    resources:
        gpu=model_gpus("instances"),
    params:
        code=code_version("pipeline.stages.instances"),
        dataset=dataset_arg("instances", "labels"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.instances", "--sequences {params.sequences} --job-summary {output}", gpu=True)
