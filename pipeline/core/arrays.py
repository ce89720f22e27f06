"""Array files with reproducible bytes: ``.npz`` archives whose zip entries carry a fixed timestamp.

``numpy.savez_compressed`` stamps each entry with the current time, so the same data written twice
differs byte for byte; the pipeline promises identical bytes for the same seed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from pipeline.core.errors import InputError


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as a compressed .npz (readable by numpy.load) with deterministic bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def load_npz(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays of an .npz; InputError naming the file if it is unreadable or incomplete."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise InputError(path, f"missing arrays {missing} (has {data.files})")
            return {k: data[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(path, f"cannot read array archive ({err})") from None
