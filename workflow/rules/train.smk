# Stage 'train': the vid2vid trainer on a dataset's cache (python -m pipeline.stages.train), one job per run
# (datasets.<ds>.runs.<run>). It depends on the cache, and, for a run that makes its first frames in
# training, on the checkpoint of the single-image run named by its first_frames_from (a run trained
# on real first frames, the official way, needs that one at synthesis only, so the two train side
# by side). threads: datasets.<ds>.threads.train (default 2). gpus > 1 starts torchrun on one
# node; each job gets its own devices through pipeline.tools.gpu_slot. nodes > 1 (SLURM only)
# asks for that many nodes and starts a torchrun agent on each with srun (docs/running.md).
# --resume continues a crashed run, and a run whose workers torchrun restarts.


rule train:
    input:
        train_inputs,
    output:
        f"{RESULTS}/{{ds}}/checkpoints/{{run}}/final.pt",
    log:
        f"{RESULTS}/{{ds}}/logs/train/{{run}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/train/{{run}}.tsv"
    wildcard_constraints:
        run=r"(?!official_)[A-Za-z0-9][A-Za-z0-9_-]*",  # official_*: imported (official.smk)
    priority: run_priority
    conda:
        CONDA_ENV
    threads: rule_threads("train")
    resources:
        # on several nodes the GPUs are SLURM's to give (slurm_extra: per node), not gpu_slot's
        gpu=lambda w: run_gpus(w) if run_nodes(w) == 1 else 0,
        nodes=lambda w: run_nodes(w) if run_nodes(w) > 1 else None,
        tasks=lambda w: run_nodes(w) if run_nodes(w) > 1 else None,  # one torchrun agent per node
        slurm_extra=run_slurm_extra,
    params:
        code=code_version("pipeline.stages.train"),
        options=run_options_arg,
        paths=run_paths_arg,
        launcher=run_launcher,
    shell:
        stage_shell(
            "pipeline.stages.train",
            "--options-json {params.options} --set-json {params.paths} --resume",
            dataset=False,
            gpu=True,
            python="{params.launcher}",
        )
