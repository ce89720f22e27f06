"""Peak memory of each stage on one long video: does it grow with the video's length?

    python benchmarks/long_video_memory.py [--lengths 100 600 1200] [--size 256 128] [--workdir DIR]

The paper synthesizes Cityscapes' long demo videos (600, 1100 and 1200 frames). Here one synthcity
val sequence of each length, at the demo's size, goes through the stage CLIs the rules call
(frames, labels, instances and flow in mode given, cache pack, synthesize with a tiny vid2vid
trained once on a short clip), each in its own process; the table is each process's peak
resident memory (``ru_maxrss`` from wait4) and seconds. A stage that streams stays flat across the
lengths; one that holds the whole video grows with it. Resident memory counts file pages too:
synthesis reads the cache through safetensors' memory map, so its figure rises with the pages of
the shard it touched (at 1200 frames, 256x128: anonymous memory +10 MiB over 100 frames, mapped
file pages +208 MiB, which the kernel reclaims under pressure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._table import print_table  # noqa: E402
from pipeline.core.cli import stage_command  # noqa: E402

TRAIN = {"model": {"ngf": 8, "n_downsample": 2, "n_blocks": 2}, "loss": {"lambda_vgg": 0},
         "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
         "schedule": [{"steps": 2, "n_frames": 5}], "train": {"first_frame": "real", "checkpoint_every": 2}}


def peak_of(command: list[str]) -> tuple[float, float]:
    """(peak resident MiB, seconds) of one command, run to the end."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:  # a file, not a pipe nobody reads while the stage runs
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command[2:4])} failed: {log.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def dataset_config(frames: int, size: list[int], train: int, val: int) -> dict:
    synth = {"seed": 0, "size": size, "frames": frames, "train": train, "val": val, "annotated_frame": 5}
    return {"adapter": "cityscapes", "generate": {"synthcity": synth}, "frames": {"size": size},
            "labels": {"mode": "given"}, "instances": {"mode": "given"}, "flow": {"mode": "given"}}


def prepare_cache(name: str, config: dict, results: Path) -> tuple[Path, dict]:
    """synthcity -> frames -> labels / instances / flow (given) -> one cache shard; peaks per stage."""
    peaks = {}
    for module in ("synthcity", "frames", "labels", "instances", "flow"):
        peaks[module] = peak_of(stage_command(module, name, config, results))
    shard = results / name / "cache" / "all.safetensors"
    peaks["cache"] = peak_of(stage_command("cache", name, config, results, "--output", str(shard), subcommand=("pack",)))
    return shard, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 600, 1200])
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        short, _ = prepare_cache("short", dataset_config(12, args.size, 1, 0), work)
        checkpoint = work / "run"
        options = {**TRAIN, "dataset": "short", "cache": [str(short)], "output": str(checkpoint)}
        peak_of([sys.executable, "-m", "pipeline.stages.train", "--options-json", json.dumps(options), "--device", "cpu"])
        rows = {}
        for length in args.lengths:
            name = f"long{length}"
            shard, peaks = prepare_cache(name, dataset_config(length, args.size, 0, 1), work)
            peaks["synthesize"] = peak_of([sys.executable, "-m", "pipeline.stages.synthesize", "--checkpoint",
                                           str(checkpoint / "final.pt"), "--cache", str(shard), "--first-frame", "real",
                                           "--output", str(work / name / "synth"), "--device", "cpu"])
            rows[length] = peaks
            print(length, {k: f"{mib:.0f} MiB, {s:.0f} s" for k, (mib, s) in peaks.items()}, flush=True)
    stages = list(next(iter(rows.values())))
    table = [[name] + [f"{rows[n][name][0]:.0f} ({rows[n][name][1]:.0f} s)" for n in args.lengths] for name in stages]
    print_table(f"peak resident MiB (seconds) of each stage on one {args.size[0]}x{args.size[1]} video",
                ["stage"] + [f"{n} frames" for n in args.lengths], table)


if __name__ == "__main__":
    main()
