"""The training runs of a dataset (``datasets.<ds>.runs.<run>``) as the trainer takes them.

A run is the trainer's options (model/options.py) plus workflow keys: ``gpus`` (devices for the
job, per node; > 1 uses torchrun), ``nodes`` (machines for the job: > 1 starts torchrun on each
through srun, a SLURM cluster only), ``priority`` (its training job's Snakemake priority; default the
dataset's) and ``first_frames_from`` (a single-image run, e.g. frame_by_frame, whose trained
generator makes this run's first frames: the official --use_single_G). A run trained on real
first frames (``train.first_frame: real``, the official way) needs that generator at synthesis
only, so the two train side by side; otherwise it makes the first frames in training too. The
workflow (workflow/rules/common.smk) and the benchmarks build a run's options here alike, and
:func:`comparison` gives both an evaluation's baseline and the frames it leaves out.

A run may inherit another: ``base: vid2vid`` plus the keys it changes, so an ablation states the
one thing it removes (``no_flow: {base: vid2vid, model: {use_flow: false}}``). :func:`resolve`
applies the bases when the config is validated: every consumer sees complete runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

WORKFLOW_KEYS = ("gpus", "nodes", "priority", "first_frames_from", "base")


class RunError(ValueError):
    """A run that the dataset does not define, or that names an unknown run (``run``: which one)."""

    def __init__(self, message: str, run: str | None = None) -> None:
        super().__init__(message)
        self.run = run


def resolve(runs: dict) -> dict:
    """Every run with its ``base`` applied: the base run (resolved first) with the run's own keys
    merged over it, mappings key by key, lists and values replaced. RunError for an unknown base or
    a cycle, naming the run."""
    from pipeline.core.config import merge

    resolved: dict[str, dict] = {}

    def settle(run: str, chain: tuple[str, ...]) -> dict:
        if run in resolved:
            return resolved[run]
        own = runs[run]
        base = own.get("base")
        if base is None:
            settings = copy.deepcopy(own)
        elif base in chain + (run,):
            raise RunError(f"{run}.base: {' -> '.join(chain + (run, base))} is a cycle", run)
        elif base not in runs:
            raise RunError(f"{run}.base: {base!r} is not a run of this dataset (has {sorted(runs)})", run)
        else:
            settings = merge(copy.deepcopy(settle(base, chain + (run,))), {k: v for k, v in own.items() if k != "base"})
        resolved[run] = settings
        return settings

    return {run: settle(run, ()) for run in runs}


def run_settings(runs: dict, run: str) -> dict:
    """The run's trainer options (without the workflow keys)."""
    if run not in runs:
        raise RunError(f"has no run {run!r} (has {sorted(runs)})")
    settings = {k: v for k, v in runs[run].items() if k not in WORKFLOW_KEYS}
    source = first_frames_run(runs, run)
    if source is not None and source not in runs:
        raise RunError(f"{run}.first_frames_from: {source!r} is not a run of this dataset (has {sorted(runs)})")
    return settings


def comparison(evaluate, runs: dict, methods: list[str], ablations: bool = False) -> tuple[str, int]:
    """(baseline, frames left out at the start) of an evaluation of ``methods`` (``evaluate``: a
    dataset's evaluate settings): the baseline is evaluate.baseline or the first method (of the
    ablations: their first), and the frames left out are the longest history of the compared runs
    (the first frames, made by the single-image generator)."""
    baseline = (None if ablations else evaluate.baseline) or methods[0]
    histories = [runs[m].get("model", {}).get("n_frames", 3) - 1 for m in methods if m in runs]
    return baseline, max(histories, default=0)


def first_frames_run(runs: dict, run: str) -> str | None:
    return runs.get(run, {}).get("first_frames_from")


def first_frames_in_training(runs: dict, run: str) -> str | None:
    """The single-image run whose checkpoint ``run``'s training needs: its ``first_frames_from``,
    unless the run trains on real first frames (then that generator is used at synthesis only)."""
    source = first_frames_run(runs, run)
    return None if source is None or _trains_on_real_frames(runs, run) else source


def _trains_on_real_frames(runs: dict, run: str) -> bool:
    return runs.get(run, {}).get("train", {}).get("first_frame") == "real"


def checkpoint(results: str | Path, run: str) -> Path:
    """results/<ds>/checkpoints/<run>/final.pt"""
    return Path(results) / "checkpoints" / run / "final.pt"


def trainer_paths(runs: dict, run: str, dataset: str, cache: str, output: str, code: str,
                  first_frames_checkpoint: str | None = None) -> dict:
    """What the workflow sets over the run's options: the cache, the output folder, the code
    version, and the single-image run's checkpoint that makes the first frames."""
    paths = {"dataset": dataset, "cache": [str(cache)], "output": str(output), "code": code}
    # first_frame real: G trains on the real first frames and the single-image run makes them at
    # synthesis (the official code: rule synthesize passes its checkpoint); otherwise in training too
    if first_frames_in_training(runs, run):
        if first_frames_checkpoint is None:
            raise RunError(f"{run}: first_frames_from {first_frames_run(runs, run)!r} needs that run's checkpoint")
        train = run_settings(runs, run).get("train", {})
        paths["train"] = {**train, "first_frame": "image", "single_image_generator": str(first_frames_checkpoint)}
    return paths
