# Stage 'pose' (task pose): keypoints -> OpenPose-style pose maps with a person-centred crop
# (python -m pipeline.stages.pose). Mode mediapipe first runs MediaPipe in its own environment
# (config 'mediapipe_python', made by `make setup-mediapipe`; numpy<2, no torch).


rule pose_mediapipe:
    input:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    output:
        f"{RESULTS}/{{ds}}/keypoints/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/pose_mediapipe/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/pose_mediapipe/{{shard}}.tsv"
    conda:
        "../../envs/mediapipe.yaml"
    params:
        python=mediapipe_python,
        code=code_version("pipeline.stages.pose_mediapipe"),
        complexity=lambda w: dataset(w.ds).settings.pose.model_complexity,
        sequences=shard_names,
    shell:
        stage_shell(
            "pipeline.stages.pose_mediapipe",
            "--dataset {wildcards.ds} --sequences {params.sequences} --model-complexity {params.complexity} "
            "--job-summary {output}",
            dataset=False,
            results=True,
            python="{params.python} -m",
        )


rule pose:
    input:
        pose_inputs,
    output:
        f"{RESULTS}/{{ds}}/pose/shards/{{shard}}.json",
    log:
        f"{RESULTS}/{{ds}}/logs/pose/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/pose/{{shard}}.tsv"
    conda:
        CONDA_ENV
    resources:
        gpu=lambda w: 1 if stage_mode(w.ds, "pose") == "keypointrcnn" else 0,
    params:
        code=code_version("pipeline.stages.pose"),
        dataset=dataset_arg("pose"),
        sequences=shard_names,
    shell:
        stage_shell("pipeline.stages.pose", "--sequences {params.sequences} --job-summary {output}", gpu=True)
