"""The .pt files the pipeline writes (training checkpoints, trained annotators). Reading: a missing,
truncated or corrupt file is an InputError that names it and what makes it again, not a
traceback from deep inside torch's unpickler. The files are written atomically
(pipeline/core/atomic.py), so a truncated one means a damaged disk or a copy cut short.

torch.save writes a zip archive whose records each carry a CRC-32, but torch.load never checks
them: a flipped bit in a tensor loads as a wrong weight. The records are checked first
(``zipfile.testzip``: one read of the file, about a millisecond per MB). Writing: a checkpoint
holds nothing that differs between two identical trainings (:func:`stored_meta` leaves the wall
time out, and :func:`save_checkpoint` writes through a file object: torch.save given a path names
the archive's records after the file, here the atomic write's random temporary name), so its
sha256, which names what was made from it downstream, changes only with what it holds.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from pipeline.core.errors import InputError, remake_advice

# what reading a file cut short or damaged raises: the zip reader's errors, EOF, and the unpickler's
# (torch.load of an archive whose records all pass their CRC); not what a sound file may raise
# while it loads (a RuntimeError such as CUDA running out of memory), which is no reason to delete it
_DAMAGED = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile)


TIMINGS = ("seconds",)  # training metrics that differ between identical runs


def stored_meta(metrics: dict) -> dict:
    """The training metrics a checkpoint keeps: all but the timings (metrics.json beside it has them)."""
    return {key: value for key, value in metrics.items() if key not in TIMINGS}


def save_checkpoint(state: dict, path: str | Path) -> None:
    """``torch.save(state)`` to ``path``, atomically and byte-for-byte reproducible."""
    from pipeline.core.atomic import atomic_file

    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | Path, remedy: str | None = None, map_location=None, weights_only: bool = True):
    """``torch.load(path)``; ``remedy`` says what makes the file again (it ends the error; by
    default the Snakemake command that makes it again, pipeline/core/errors.py remake_advice)."""
    path = Path(path)
    remedy = remedy or remake_advice(path)
    if not path.is_file():
        raise InputError(path, f"missing: {remedy}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise InputError(path, f"is corrupt (record {bad} fails its CRC-32 check); {remedy}")
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except _DAMAGED as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"is truncated or corrupt ({first_line[:160]}); {remedy}") from None
