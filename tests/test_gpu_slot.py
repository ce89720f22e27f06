"""GPU jobs get their own devices: concurrent jobs never share one, and wait when none is free."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from pipeline.tools import gpu_slot


def _start(tmp_path, name, need, hold_s):
    out = tmp_path / f"{name}.txt"
    script = f"import os,time; open({str(out)!r},'w').write(os.environ['CUDA_VISIBLE_DEVICES']); time.sleep({hold_s})"
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["VID2VID_GPU_LOCKS"] = str(tmp_path / "locks")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.tools.gpu_slot", "--gpus", "3", "--need", str(need), "--",
                             sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL)
    return proc, out


def _wait_for(path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text()


def test_concurrent_jobs_get_distinct_devices_and_the_next_one_waits(tmp_path):
    first, first_out = _start(tmp_path, "a", need=2, hold_s=2.0)
    devices_a = _wait_for(first_out).split(",")
    second, second_out = _start(tmp_path, "b", need=1, hold_s=0.1)
    devices_b = _wait_for(second_out).split(",")
    assert len(devices_a) == 2 and len(devices_b) == 1 and not set(devices_a) & set(devices_b)
    third, third_out = _start(tmp_path, "c", need=2, hold_s=0.1)  # only one free until the first ends
    time.sleep(0.8)
    assert not third_out.exists() and first.poll() is None
    assert len(_wait_for(third_out).split(",")) == 2
    assert first.wait(10) == 0 and second.wait(10) == 0 and third.wait(10) == 0


def test_scheduler_choice_and_no_gpu_run_the_command_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    probe = [sys.executable, "-c", "import os,sys; sys.exit(int(os.environ.get('CUDA_VISIBLE_DEVICES', '0')))"]
    assert gpu_slot.main(["--gpus", "2", "--", *probe]) == 7
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu_slot.main(["--gpus", "0", "--", *probe]) == 0
