"""Reading the .pt files the pipeline writes (training checkpoints, trained annotators): a missing,
truncated or corrupt file is an InputError that names it and what makes it again, not a
traceback from deep inside torch's unpickler. The files are written atomically
(pipeline/core/atomic.py), so a truncated one means a damaged disk or a copy cut short.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from pipeline.core.errors import InputError

# what torch.load raises on a file cut short or damaged: the zip reader's RuntimeError, the
# unpickler's errors, EOF
_DAMAGED = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)


def load_checkpoint(path: str | Path, remedy: str, map_location=None, weights_only: bool = True):
    """``torch.load(path)``; ``remedy`` says what makes the file again (it ends the error)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"missing: {remedy}")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except _DAMAGED as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"is truncated or corrupt ({first_line[:160]}); {remedy}") from None
