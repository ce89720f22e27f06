"""The slurm profile against a fake SLURM: the real snakemake-executor-plugin-slurm submits the demo
DAG with sbatch, polls sacct, runs the jobs (locally, through tests/fake_slurm/), and every sbatch
line carries the partition, time, memory and CPUs the profile gives its rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, free_port

FAKE_SLURM = REPO / "tests" / "fake_slurm"
TINY = REPO / ".test" / "config" / "slurm.yaml"  # the demo's runs at test size


def _option(argv, name):
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.slow
def test_slurm_profile_submits_the_demo_with_the_profile_resources(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(REPO / "Snakefile", workdir)
    shutil.copytree(REPO / "workflow", workdir / "workflow")
    shutil.copytree(REPO / "config", workdir / "config")
    shutil.copytree(REPO / "envs", workdir / "envs", ignore=shutil.ignore_patterns("mediapipe"))  # specs, not the env
    state = tmp_path / "slurm"
    env = {**os.environ, "PATH": f"{FAKE_SLURM}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "FAKE_SLURM_DIR": str(state)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
         "--slurm-init-seconds-before-status-checks", "1", "results/demo/checkpoints/vid2vid/final.pt",
         "--configfile", str(TINY)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1800)  # 11 jobs, each a Snakemake start: 10 minutes on a 2-core AVX2-only CPU
    assert result.returncode == 0, result.stdout[-4000:]
    assert (workdir / "results/demo/checkpoints/vid2vid/final.pt").is_file()

    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    defaults, per_rule = profile["default-resources"], profile["set-resources"]
    submissions = [json.loads(line)["argv"] for line in (state / "sbatch.jsonl").read_text().splitlines()]
    seen = {}
    print("\nsbatch lines (fake SLURM):")
    for argv in submissions:
        rule = _option(argv, "--comment").removeprefix("rule_").split("_wildcards_")[0]
        expected = {**defaults, **per_rule.get(rule, {})}
        rendered = {
            "partition": _option(argv, "-p"),
            "time": _option(argv, "-t"),
            "mem": _option(argv, "--mem"),
            "cpus": _option(argv, "--cpus-per-task"),
            "cpus_per_gpu": _option(argv, "--cpus-per-gpu"),
            "gpus": _option(argv, "--gpus"),
            "account": _option(argv, "-A"),
        }
        print(f"  {rule:12s} " + " ".join(f"{k}={v}" for k, v in rendered.items() if v is not None))
        assert rendered["partition"] == expected["slurm_partition"]
        assert rendered["time"] == str(expected["runtime"])
        assert rendered["mem"] == str(expected["mem_mb"])
        if rule in ("train", "train_segmenter", "labels"):  # the GPU class (labels: mode 'train')
            assert rendered["gpus"] == "1" and rendered["cpus_per_gpu"] == str(expected["cpus_per_gpu"])
            assert rendered["cpus"] is None
        else:
            assert rendered["cpus"] == str(expected.get("cpus_per_task", 1)) and rendered["gpus"] is None
        assert rendered["account"] == "fakeaccount"  # guessed through sacct, validated with sacctmgr
        assert _option(argv, "-D") == str(workdir)
        seen[rule] = seen.get(rule, 0) + 1
    assert seen == {"synthcity": 1, "frames": 1, "frames_manifest": 1, "train_segmenter": 1, "labels": 1,
                    "instances": 1, "flow": 1, "cache": 1, "cache_index": 1,
                    "train": 1}  # vid2vid alone: trained on real first frames, it needs frame_by_frame's
    # generator at synthesis only


@pytest.mark.slow
def test_a_run_on_two_nodes_is_one_sbatch_job_with_a_torchrun_agent_per_node(tmp_path):
    """runs.vid2vid.nodes: 2 through the slurm profile: one sbatch job asks for 2 nodes, one task
    and its GPUs on each; srun starts a torchrun agent per node (the fake SLURM's nodes are this
    machine), which meet in a c10d rendezvous on the first and train as 2 ranks."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(REPO / "Snakefile", workdir)
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, workdir / folder)
    shutil.copytree(REPO / "envs", workdir / "envs", ignore=shutil.ignore_patterns("mediapipe"))
    config = ["--configfile", str(TINY), "--config", "datasets={demo: {runs: {vid2vid: {nodes: 2}}}}"]
    target = "results/demo/checkpoints/vid2vid/final.pt"
    cache = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "results/demo/cache/index.json", *config],
                           cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200)
    assert cache.returncode == 0, cache.stdout[-3000:]
    state = tmp_path / "slurm"
    env = {**os.environ, "PATH": f"{FAKE_SLURM}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "FAKE_SLURM_DIR": str(state), "VID2VID_RDZV_PORT": str(free_port())}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
         "--slurm-init-seconds-before-status-checks", "1", "--retries", "0", target, *config],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:]
    submissions = [json.loads(line)["argv"] for line in (state / "sbatch.jsonl").read_text().splitlines()]
    assert len(submissions) == 1  # the train job alone: the cache was made before
    argv = submissions[0]
    print("\nsbatch (fake SLURM):", " ".join(argv[:-1]))
    assert _option(argv, "--nodes") == "2" and _option(argv, "--ntasks") == "2"
    assert "--ntasks-per-node=1" in " ".join(argv)
    assert "--gpus-per-node=1" in " ".join(argv)
    run = json.loads((workdir / "results/demo/checkpoints/vid2vid/run.json").read_text())
    assert run["world_size"] == 2 and (workdir / target).is_file()
