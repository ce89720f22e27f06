"""Give a GPU job its own device(s): ``python -m pipeline.tools.gpu_slot [--need K] -- COMMAND ...``.

Snakemake limits how many GPU jobs run at once (``resources: gpu=N`` in the local profile) but
does not say which device each may use. This wrapper takes K free devices through lock files
(one per GPU, ``flock``), exports ``CUDA_VISIBLE_DEVICES`` for the command and releases the locks
when it ends, so concurrent jobs never share a card. Where a scheduler already chose the devices
(``CUDA_VISIBLE_DEVICES`` set, as SLURM does) or there is no GPU, the command runs unchanged.

The number of GPUs comes from ``--gpus``, else ``VID2VID_GPUS``, else ``nvidia-smi -L``; lock files
live in ``VID2VID_GPU_LOCKS`` (default: <tmp>/vid2vid-gpu-locks).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.core.cli_help import cli_parser


def count_gpus() -> int:
    if os.environ.get("VID2VID_GPUS"):
        return int(os.environ["VID2VID_GPUS"])
    if shutil.which("nvidia-smi") is None:
        return 0
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))


def acquire(need: int, gpus: int, lock_dir: Path, poll: float = 0.5) -> tuple[list[int], list]:
    """Block until ``need`` of the ``gpus`` devices are free; returns their indices and held locks."""
    if need > gpus:
        raise SystemExit(f"error: the job needs {need} GPUs, this machine has {gpus}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        held, devices = [], []
        for index in range(gpus):
            handle = open(lock_dir / f"gpu{index}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held.append(handle)
            devices.append(index)
            if len(devices) == need:
                return devices, held
        for handle in held:  # not enough free: give back and wait
            handle.close()
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("python -m pipeline.tools.gpu_slot", __doc__)
    parser.add_argument("--need", type=int, default=1, help="devices this job uses (default 1)")
    parser.add_argument("--gpus", type=int, help="devices on this machine (default: VID2VID_GPUS or nvidia-smi)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    gpus = args.gpus if args.gpus is not None else count_gpus()
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None or gpus == 0 or args.need == 0:
        return subprocess.call(command)
    lock_dir = Path(os.environ.get("VID2VID_GPU_LOCKS", Path(tempfile.gettempdir()) / "vid2vid-gpu-locks"))
    devices, held = acquire(args.need, gpus, lock_dir)
    try:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
        print(f"gpu_slot: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr)
        return subprocess.call(command, env=env)
    finally:
        for handle in held:
            handle.close()


if __name__ == "__main__":
    sys.exit(main())
