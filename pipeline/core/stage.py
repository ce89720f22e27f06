"""Running a stage over the sequences of one job: skip what is complete, write the rest atomically.

Every per-sequence stage writes ``results/<ds>/<stage>/<seq>/`` through :func:`run_sequences`:
the folder is filled under a temporary name and renamed when the sequence is done, with a
``stage.json`` stamp holding the fingerprint of the settings and the stage's code version
(pipeline/core/code_version.py) it was made with, and the size of every file it wrote. A rerun
keeps sequences whose stamp matches and whose files are all there whole, and redoes the others
(saying why), so a failed job loses nothing already complete, a deleted or truncated file is made
again, and edited code redoes everything.
A summary's ``warnings`` (sentences: what is wrong with the sequence's input but tolerated) are
logged at WARNING level, when the sequence is made and each time it is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterable

from pipeline.core.atomic import atomic_dir, atomic_file, file_listing, listing_problem
from pipeline.core.cli_help import cli_parser
from pipeline.core.config import Dataset
from pipeline.core.progress import progress
from pipeline.datasets import Sequence

STAMP = "stage.json"


def fingerprint(*parts) -> str:
    """A short stable hash of JSON-serialisable settings."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_stamp(seq_dir: Path) -> dict | None:
    try:
        return json.loads((seq_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None


def incomplete_reason(seq_dir: Path, stamp: str) -> str | None:
    """Why ``seq_dir`` is not the complete output of these settings (``stamp``), or None if it is."""
    found = read_stamp(seq_dir)
    if not found:
        return "not made yet" if not seq_dir.exists() else f"{STAMP} is missing or unreadable"
    if found.get("fingerprint") != stamp:
        return "made with other settings or code"
    return listing_problem(seq_dir, found.get("files"))


def log_warnings(log: logging.Logger, seq_name: str, summary: dict) -> None:
    for warning in summary.get("warnings", ()):
        log.warning("%s: %s", seq_name, warning)


def frames_listed(frames: list[int], total: int, limit: int = 20) -> str:
    """'3 of 50 frames (6.0%): 9, 24, 39' (the first ``limit`` numbers), for warnings and errors."""
    listed = ", ".join(map(str, frames[:limit])) + (", ..." if len(frames) > limit else "")
    return f"{len(frames)} of {total} frames ({len(frames) / max(total, 1):.1%}): {listed}"


def run_sequences(
    stage: str,
    ds: Dataset,
    seqs: Iterable[Sequence],
    settings_of: Callable[[Sequence], object],
    work: Callable[[Sequence, Path], dict],
    force: bool = False,
) -> dict[str, dict]:
    """Run ``work(seq, tmp_dir)`` for each sequence whose output is missing or stale.

    ``settings_of(seq)`` is everything the output depends on; ``work`` fills tmp_dir and returns a
    small summary (stored in the stamp, returned for kept sequences too; its ``warnings`` logged).
    """
    from pipeline.core.code_version import code_version

    log = logging.getLogger(f"pipeline.{stage}")
    code = code_version(f"pipeline.{stage}")  # edited stage code redoes every sequence
    seqs = list(seqs)
    summaries = {}
    for seq in progress(seqs, desc=f"{stage} {ds.name}", unit="seq", disable=len(seqs) < 2):
        seq_dir = ds.results / stage / seq.name
        stamp = fingerprint(stage, seq.name, seq.split, settings_of(seq), code)
        reason = "--force" if force else incomplete_reason(seq_dir, stamp)
        if reason is None:
            log.info("%s: complete with these settings (every file there), kept", seq.name)
            summaries[seq.name] = read_stamp(seq_dir)["summary"]
            log_warnings(log, seq.name, summaries[seq.name])
            continue
        if seq_dir.exists():
            log.info("%s: made again: %s", seq.name, reason)
        start = time.perf_counter()
        with atomic_dir(seq_dir) as tmp:
            summary = work(seq, tmp)
            stamped = {"fingerprint": stamp, "summary": summary, "files": file_listing(tmp, leave_out=(STAMP,))}
            (tmp / STAMP).write_text(json.dumps(stamped, sort_keys=True))
        elapsed = time.perf_counter() - start
        frames = summary.get("frames", 0)
        log.info("%s: %d frames in %.2fs (%.1f frames/s)", seq.name, frames, elapsed, frames / max(elapsed, 1e-9))
        log_warnings(log, seq.name, summary)
        summaries[seq.name] = summary
    return summaries


def write_job_summary(path: Path, stage: str, summaries: dict[str, dict]) -> None:
    """The per-job sentinel Snakemake tracks: which sequences the job covered, and their summaries."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps({"stage": stage, "sequences": summaries}, indent=1, sort_keys=True))


class Modes:
    """A stage's modes, each with the function that makes one sequence: names (``given``, ``dis``) and
    families of names under a prefix (``ptlflow:`` for ``ptlflow:<model>``), registered as such."""

    def __init__(self, named: dict[str, Callable], families: dict[str, Callable] | None = None) -> None:
        self.named, self.families = dict(named), dict(families or {})

    def _family(self, mode: str) -> str | None:
        return next((prefix for prefix in self.families if mode.startswith(prefix) and len(mode) > len(prefix)), None)

    def __contains__(self, mode: object) -> bool:
        return isinstance(mode, str) and (mode in self.named or self._family(mode) is not None)

    def __getitem__(self, mode: str) -> Callable:
        if mode in self.named:
            return self.named[mode]
        prefix = self._family(mode)
        if prefix is None:
            raise KeyError(mode)
        return self.families[prefix]

    def names(self) -> list[str]:
        """Every mode, a family as ``<prefix><name>``."""
        return list(self.named) + [f"{prefix}<name>" for prefix in self.families]


def sequence_stage_main(stage: str, doc: str, modes: Modes | dict[str, Callable], argv: list[str] | None = None,
                        version: int = 1, inputs_of: Callable[[Dataset, str], dict] | None = None) -> dict[str, dict]:
    """The command line shared by the per-sequence stages (labels, instances, flow, ...).

    ``modes[ds.settings.<stage>.mode](ds, seq, tmp_dir) -> summary`` does the work of one sequence;
    the output depends on the stage's settings, on the frames' settings and on whatever
    ``inputs_of(ds, mode)`` returns (e.g. the hash of the model checkpoint the mode runs).
    """
    from pipeline import datasets
    from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
    from pipeline.core.errors import InputError

    parser = cli_parser(f"python -m pipeline.stages.{stage}", doc)
    add_dataset_args(parser)
    parser.add_argument("--sequences", nargs="+", help="sequence names (default: all of the dataset)")
    parser.add_argument("--job-summary", type=Path, help="write the job's summary JSON here (Snakemake's output)")
    parser.add_argument("--force", action="store_true", help="redo sequences even if complete")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    modes = modes if isinstance(modes, Modes) else Modes(modes)
    mode = getattr(ds.settings, stage).mode
    if mode not in modes:
        raise InputError(f"{ds.config_key}.{stage}.mode", f"mode {mode!r} is not available (have "
                                                               f"{', '.join(modes.names())})")
    seqs = datasets.select(ds, args.sequences)
    settings = {"version": version, stage: ds.cfg[stage], "frames": ds.cfg["frames"],
                "inputs": inputs_of(ds, mode) if inputs_of else None}
    summaries = run_sequences(stage, ds, seqs, lambda seq: settings,
                              lambda seq, tmp: modes[mode](ds, seq, tmp), args.force)
    if args.job_summary:
        write_job_summary(args.job_summary, stage, summaries)
    return summaries
