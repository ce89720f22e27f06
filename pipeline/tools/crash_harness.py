"""``python -m pipeline.tools.crash_harness``: kill stage CLIs with SIGKILL at seeded moments, rerun
them, and compare what they leave with an uninterrupted run.

On a small synthcity dataset (3 sequences x 24 frames, 256x128), each case runs one stage CLI the
way its rule does, in a results folder prepared with the stage's inputs: once without
interruption (the reference), then, for each kill point, in the same folder prepared afresh, once
killed by SIGKILL at a seeded point and once rerun to the end. A kill point is a seeded number of
the stage's output files (temporaries included) having appeared, so it lands inside the work
whatever the machine's speed; for a stage with few output files, every other kill is as its
first file (a temporary) appears, while it is being written, and the others, like the trainer's,
after a seeded delay between the end of its imports and the reference's end (killing Python while
it imports proves nothing). The stages' outputs must then be byte-identical to the reference's, with no
temporary left; the trainer's final.pt must hold the same weights, weight averages and optimizer
state (tensor by tensor: its zip records are named after the temporary file, so its bytes
differ). ``benchmarks/crash_harness.py`` prints the table; tests/test_crash_harness.py runs a few cases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DATASET = "crash"
SYNTH = {"seed": 0, "size": [256, 128], "frames": 24, "train": 2, "val": 1, "annotated_frame": 5}
CONFIG = {"adapter": "cityscapes", "generate": {"synthcity": SYNTH}, "frames": {"size": [256, 128]},
          "labels": {"mode": "given"}, "instances": {"mode": "given"}, "flow": {"mode": "given"}}
TRAIN = {  # a tiny vid2vid run: two stages, a checkpoint every step, so kills land between them
    "dataset": DATASET, "model": {"ngf": 8, "n_downsample": 2, "n_blocks": 2},
    "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1}, "loss": {"lambda_vgg": 0},
    "schedule": [{"steps": 6, "n_frames": 4, "scale": 0.5}, {"steps": 6, "n_frames": 5}],
    "train": {"first_frame": "real", "checkpoint_every": 1, "log_every": 1, "ema": 0.9}}


@dataclass(frozen=True)
class Case:
    """One stage CLI: its command for a results folder, the folders of ``results/<ds>/`` it reads
    (copied in before it runs) and writes (compared)."""

    stage: str
    command: Callable[[Path], list[str]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    compare: Callable[[Path, Path], list[str]] | None = None  # (reference, rerun) -> what differs
    imports: str | None = None  # the module its start-up imports (default pipeline.stages.<stage>)


def _stage(module: str, results: Path, *extra: str, subcommand: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", f"pipeline.stages.{module}", *subcommand, "--dataset", DATASET, "--dataset-json",
            json.dumps(CONFIG), "--results", str(results), *extra]


def _train_command(results: Path) -> list[str]:
    ds = results / DATASET
    options = {**TRAIN, "cache": [str(ds / "cache" / "all.safetensors")], "output": str(ds / "checkpoints" / "run")}
    return [sys.executable, "-m", "pipeline.stages.train", "--options-json", json.dumps(options), "--resume",
            "--device", "cpu"]


def _same_training_state(reference: Path, rerun: Path) -> list[str]:
    """What differs between two final.pt files: weights, averages, optimizer states, step."""
    import torch

    def load(root: Path) -> dict:
        return torch.load(root / DATASET / "checkpoints" / "run" / "final.pt", map_location="cpu", weights_only=False)

    a, b = load(reference), load(rerun)
    differs = [] if a["step"] == b["step"] else ["step"]

    def walk(x, y, where: str) -> None:
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)):
                differs.append(where)
        elif isinstance(x, dict):
            if not isinstance(y, dict) or set(x) != set(y):
                differs.append(where)
            else:
                for key in x:
                    walk(x[key], y[key], f"{where}.{key}")
        elif isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                differs.append(where)
            else:
                for i, (u, v) in enumerate(zip(x, y)):
                    walk(u, v, f"{where}[{i}]")
        elif x != y:
            differs.append(where)

    for part in ("generator", "image_d", "video_ds", "averages", "opt_g", "opt_d", "sched_g", "sched_d"):
        if part in a or part in b:
            walk(a.get(part), b.get(part), part)
    return differs


def cases() -> list[Case]:
    source, frames = ("source",), ("source", "frames")
    annotated = frames + ("labels", "instances", "flow")
    return [
        Case("synthcity", lambda r: _stage("synthcity", r), (), ("source",)),
        Case("frames", lambda r: _stage("frames", r, "--shard-manifest", str(r / DATASET / "frames" / "shards" / "all.csv")),
             source, ("frames",)),
        Case("labels", lambda r: _stage("labels", r, "--job-summary", str(r / DATASET / "labels" / "shards" / "all.json")),
             frames, ("labels",)),
        Case("instances", lambda r: _stage("instances", r, "--job-summary",
                                           str(r / DATASET / "instances" / "shards" / "all.json")),
             frames + ("labels",), ("instances",)),
        Case("flow", lambda r: _stage("flow", r, "--job-summary", str(r / DATASET / "flow" / "shards" / "all.json")),
             frames, ("flow",)),
        Case("cache", lambda r: _stage("cache", r, "--output", str(r / DATASET / "cache" / "all.safetensors"),
                                       subcommand=("pack",)),
             annotated, ("cache",)),
        Case("train", _train_command, annotated + ("cache",), ("checkpoints",), _same_training_state, "model.trainer"),
    ]


def digest(root: Path, outputs: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file (temporaries included) under the outputs of ``root/<ds>/``."""
    found = {}
    for output in outputs:
        base = root / DATASET / output
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _differences(want: dict[str, str], got: dict[str, str]) -> list[str]:
    return sorted(name for name in set(want) | set(got) if want.get(name) != got.get(name))


def _run(command: list[str], timeout: float = 600) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return time.perf_counter() - start


def _files_under(root: Path, outputs: tuple[str, ...]) -> int:
    """Files under the outputs now (os.walk skips folders renamed away while it walks)."""
    return sum(len(files) for output in outputs for _, _, files in os.walk(root / DATASET / output))


def _killed_at(command: list[str], point: tuple[str, float], root: Path, outputs: tuple[str, ...]) -> bool:
    """Start ``command`` and SIGKILL it at ``point``: ('files', n), once n files (temporaries
    included) exist under its outputs, or ('seconds', s); False when it ended first."""
    kind, value = point
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + value if kind == "seconds" else None
    while process.poll() is None:
        due = time.perf_counter() >= deadline if deadline else _files_under(root, outputs) >= value
        if due:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    return False


def _import_seconds(case: Case) -> float:
    return _run([sys.executable, "-c", f"import {case.imports or 'pipeline.stages.' + case.stage}"])


def prepare_base(workdir: Path) -> Path:
    """Every stage's outputs once, uninterrupted: what each case copies its inputs from."""
    base = workdir / "base"
    if not (base / DATASET / "cache" / "all.safetensors").is_file():
        shutil.rmtree(base, ignore_errors=True)
        for case in cases():
            if case.stage != "train":
                _run(case.command(base))
    return base


def _prepare(case: Case, base: Path, results: Path) -> None:
    shutil.rmtree(results, ignore_errors=True)
    (results / DATASET).mkdir(parents=True)
    for name in case.inputs:
        shutil.copytree(base / DATASET / name, results / DATASET / name)


def check(case: Case, base: Path, workdir: Path, kills: int, seed: int = 0) -> list[dict]:
    """The case's reference run, then ``kills`` killed-and-rerun runs in the same folder (outputs
    may name their inputs' paths): one row each."""
    results, kept = workdir / case.stage / "results", workdir / case.stage / "reference"
    _prepare(case, base, results)
    seconds = _run(case.command(results))
    want = digest(results, case.outputs)
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(results, kept)  # for compare(): the reference's files
    earliest = min(_import_seconds(case), 0.9 * seconds)
    rng = random.Random(f"{seed}-{case.stage}")
    rows = []
    for index in range(kills):
        _prepare(case, base, results)
        # many files: kill after a seeded share of them appeared (a point in the work, whatever the
        # machine's speed); few files: every other kill as the first one (its temporary) appears,
        # while it is written; the others, and the trainer's, after a seeded time past the imports
        if len(want) >= 4 and not case.compare:
            point = ("files", rng.randint(1, len(want) - 1))
        elif index % 2 and not case.compare:
            point = ("files", 1)
        else:
            point = ("seconds", round(rng.uniform(earliest, seconds), 2))
        killed = _killed_at(case.command(results), point, results, case.outputs)
        _run(case.command(results))
        differs = case.compare(kept, results) if case.compare else _differences(want, digest(results, case.outputs))
        rows.append({"stage": case.stage, "kill_at": f"{point[1]} {point[0]}", "killed": killed,
                     "reference_s": round(seconds, 2), "outputs": len(want), "identical": not differs,
                     "differs": differs[:5]})
    shutil.rmtree(workdir / case.stage)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.crash_harness", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--stages", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--kills", type=int, default=5, help="kill points per stage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    base = prepare_base(args.workdir)
    for case in cases():
        if not args.stages or case.stage in args.stages:
            for row in check(case, base, args.workdir, args.kills, args.seed):
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
