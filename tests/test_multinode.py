"""Training on several nodes without a cluster: two torchrun agents on 127.0.0.1, one process each
(gloo on the CPU), meeting in torchrun's c10d rendezvous as the nodes of a SLURM job do
(workflow/rules/common.smk run_launcher)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow

TINY = {"ngf": 4, "n_downsample": 2, "n_blocks": 2, "n_local": 0}


def run_options(shard, output, batch: int, steps: int) -> str:
    return json.dumps({
        "dataset": "demo", "cache": [str(shard)], "output": str(output), "model": TINY, "loss": {"lambda_vgg": 0},
        "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
        "schedule": [{"steps": steps, "n_frames": 3, "scale": 0.5}],
        "train": {"max_t_step": 1, "batch_size": batch, "checkpoint_every": 1, "ema": 0}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent(options: str, port: int, run_id: str, log) -> subprocess.Popen:
    """One node's torchrun agent, as run_launcher starts it on each node of a SLURM job."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", run_id,
         "--local-addr", "127.0.0.1", "--max-restarts", "3", "--monitor-interval", "1",
         "-m", "pipeline.stages.train", "--options-json", options, "--device", "cpu", "--resume"],
        stdout=log, stderr=subprocess.STDOUT)


def start_two_agents(options: str, run_id: str, logs):
    """The first agent hosts the rendezvous store (it is up before the second starts)."""
    port = free_port()
    first = agent(options, port, run_id, logs[0])
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline and first.poll() is None, "the first agent did not start its store"
            time.sleep(0.2)
    return port, first, agent(options, port, run_id, logs[1])


def wait_all(processes, timeout=600):
    for process in processes:
        assert process.wait(timeout=timeout) == 0


def test_two_nodes_compute_the_gradients_of_one_process_on_the_global_batch(small_cache, tmp_path):
    """One step: the gradients two agents average (Adam's first moment, (1 - beta1) * g) equal one
    process's on both clips. (The weights after it differ where a gradient is zero in theory and
    rounding noise in practice: Adam's first step moves each weight by lr * sign(g).)"""
    _, shard = small_cache
    single = subprocess.run([sys.executable, "-m", "pipeline.stages.train", "--options-json",
                             run_options(shard, tmp_path / "one", 2, 1), "--device", "cpu"],
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    with open(tmp_path / "a0.log", "w") as log0, open(tmp_path / "a1.log", "w") as log1:
        _, *agents = start_two_agents(run_options(shard, tmp_path / "two", 1, 1), "grads", (log0, log1))
        wait_all(agents)
    one = torch.load(tmp_path / "one" / "final.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "final.pt", weights_only=False)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    for optimizer in ("opt_g", "opt_d"):
        # all of a network's gradients at once: the biases before a norm layer have a zero
        # gradient in theory, so on their own they compare rounding noise
        a, b = (torch.cat([run[optimizer]["state"][i]["exp_avg"].flatten() for i in sorted(one[optimizer]["state"])])
                for run in (one, two))
        assert a.numel() > 1000 and a.norm() > 0
        print(optimizer, "relative difference", float((a - b).norm() / a.norm()))
        assert (a - b).norm() <= 1e-4 * a.norm()
