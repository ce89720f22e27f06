"""Training on several nodes without a cluster: two torchrun agents on 127.0.0.1, one process each
(gloo on the CPU), meeting in torchrun's c10d rendezvous as the nodes of a SLURM job do
(workflow/rules/common.smk run_launcher)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import free_port

pytestmark = pytest.mark.slow

TINY = {"ngf": 4, "n_downsample": 2, "n_blocks": 2, "n_local": 0}


def run_options(shard, output, batch: int, steps: int) -> str:
    return json.dumps({
        "dataset": "demo", "cache": [str(shard)], "output": str(output), "model": TINY, "loss": {"lambda_vgg": 0},
        "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
        "schedule": [{"steps": steps, "n_frames": 3, "scale": 0.5}],
        "train": {"max_t_step": 1, "batch_size": batch, "checkpoint_every": 1, "ema": 0}})


def agent(options: str, port: int, run_id: str, log) -> subprocess.Popen:
    """One node's torchrun agent, as run_launcher starts it on each node of a SLURM job."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", run_id,
         "--local-addr", "127.0.0.1", "--max-restarts", "3", "--monitor-interval", "1",
         "-m", "pipeline.stages.train", "--options-json", options, "--device", "cpu", "--resume"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})


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


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def lose_node(process: subprocess.Popen) -> None:
    """SIGKILL an agent and its workers at once, as when a machine goes down."""
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def step_of(latest) -> int:
    try:
        return torch.load(latest, weights_only=False)["step"]
    except Exception:  # not written yet, or being replaced
        return -1


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


def test_a_lost_node_rejoins_and_the_run_ends_as_if_none_was_lost(small_cache, tmp_path):
    """Kill the second node (agent and worker) mid-run and start it again: torchrun restarts the
    first node's worker, both resume the last checkpoint, and the final weights equal, bit for bit,
    those of a run that lost nothing. (The first node hosts the rendezvous: losing it ends a run.)"""
    _, shard = small_cache
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("whole0", "whole1", "lost0", "lost1", "back")]
    try:
        _, *agents = start_two_agents(run_options(shard, tmp_path / "whole", 1, 5), "whole", logs[:2])
        wait_all(agents)
        port, first, second = start_two_agents(run_options(shard, tmp_path / "lost", 1, 5), "lost", logs[2:4])
        deadline = time.time() + 600
        while step_of(tmp_path / "lost" / "latest.pt") < 2:
            assert time.time() < deadline and first.poll() is None and second.poll() is None
            time.sleep(0.2)
        lose_node(second)
        back = agent(run_options(shard, tmp_path / "lost", 1, 5), port, "lost", logs[4])
        wait_all([first, back])
    finally:
        for log in logs:
            log.close()
    assert "resumed from" in (tmp_path / "back.log").read_text()
    whole = torch.load(tmp_path / "whole" / "final.pt", weights_only=False)
    lost = torch.load(tmp_path / "lost" / "final.pt", weights_only=False)
    assert lost["step"] == whole["step"] == 5
    assert all(torch.equal(whole["generator"][k], lost["generator"][k]) for k in whole["generator"])
