"""Array files with reproducible bytes: ``.npz`` archives whose zip entries carry a fixed timestamp.

``numpy.savez_compressed`` stamps each entry with the current time, so the same data written twice
differs byte for byte; the pipeline promises identical bytes for the same seed.
"""

from __future__ import annotations

import io
import shutil
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


class NpzRows:
    """One array of an .npz read a few rows at a time (its zip entry decompressed as a stream), so
    a long video's flow never has to be in memory whole::

        with NpzRows(path, "flow") as rows:
            rows.shape, rows.dtype
            for start, chunk in rows.chunks(64): ...
    """

    def __init__(self, path: str | Path, key: str) -> None:
        self.path, self.key = Path(path), key

    def __enter__(self) -> "NpzRows":
        self._archive = self._entry = None
        try:
            self._archive = zipfile.ZipFile(self.path)
            if f"{self.key}.npy" not in self._archive.namelist():
                names = [n.removesuffix(".npy") for n in self._archive.namelist()]
                raise InputError(self.path, f"missing arrays ['{self.key}'] (has {names})")
            self._entry = self._archive.open(f"{self.key}.npy")
            version = np.lib.format.read_magic(self._entry)
            headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in headers:
                raise InputError(self.path, f"{self.key}: .npy format {version} is not read here (1.0, 2.0)")
            self.shape, fortran, self.dtype = headers[version](self._entry)
            if fortran:
                raise InputError(self.path, f"{self.key} is stored in Fortran order; expected C order")
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            self.__exit__()
            raise InputError(self.path, f"cannot read array archive ({err})") from None
        except InputError:
            self.__exit__()
            raise
        return self

    def chunks(self, rows: int):
        """(first row, array of up to ``rows`` rows) in order."""
        row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        for start in range(0, self.shape[0], rows):
            count = min(rows, self.shape[0] - start)
            try:
                data = self._entry.read(count * row_bytes)
            except (OSError, zipfile.BadZipFile, EOFError) as err:
                raise InputError(self.path, f"cannot read array archive ({err})") from None
            if len(data) != count * row_bytes:
                raise InputError(self.path, f"{self.key} is truncated at row {start}")
            yield start, np.frombuffer(data, self.dtype).reshape((count,) + tuple(self.shape[1:]))

    def __exit__(self, *exc) -> None:
        for handle in (self._entry, self._archive):
            if handle is not None:
                handle.close()


class NpzRowWriter:
    """An .npz written a few rows at a time, in memory that does not grow with the arrays: each
    array's rows are appended, in order, to a .npy file in ``scratch`` (a folder of its own,
    removed at the end; plain writes: no memory map, whose pages would stay resident), and the end
    of the ``with`` block deflates them one after the other into the archive, with the fixed timestamps of :func:`save_npz` (the same data gives the same bytes)::

        with NpzRowWriter(path, {"flow": ((n, 2, h, w), np.float16)}, scratch) as out:
            out.write("flow", start, rows)
    """

    def __init__(self, path: str | Path, arrays: dict[str, tuple[tuple[int, ...], np.dtype]], scratch: str | Path) -> None:
        self.path, self.scratch = Path(path), Path(scratch)
        self.arrays = {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype) in arrays.items()}

    def __enter__(self) -> "NpzRowWriter":
        self.scratch.mkdir(parents=True)  # must not exist: the writer removes it at the end
        self._files, self._rows = {}, {}
        for name, (shape, dtype) in self.arrays.items():
            handle = open(self.scratch / f"{name}.npy", "wb")
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(handle, header)  # what np.save writes for these arrays
            self._files[name], self._rows[name] = handle, 0
        return self

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        shape, dtype = self.arrays[name]
        if start != self._rows[name] or rows.shape[1:] != shape[1:] or start + len(rows) > shape[0]:
            raise ValueError(f"{name}: rows {start}..{start + len(rows)} of shape {rows.shape[1:]} do not continue "
                             f"the {self._rows[name]} rows written of {shape}")
        self._files[name].write(np.ascontiguousarray(rows, dtype=dtype).tobytes())
        self._rows[name] += len(rows)

    def __exit__(self, kind, error, traceback) -> None:
        for handle in self._files.values():
            handle.close()
        try:
            if kind is None:
                short = [name for name, (shape, _) in self.arrays.items() if self._rows[name] != shape[0]]
                if short:
                    raise ValueError(f"{self.path}: arrays not written to the end: {short}")
                with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
                    for name in self.arrays:
                        source = self.scratch / f"{name}.npy"
                        info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                        info.compress_type = zipfile.ZIP_DEFLATED
                        info.file_size = source.stat().st_size  # zip64 only where an array needs it
                        with open(source, "rb") as data, archive.open(info, "w") as entry:
                            shutil.copyfileobj(data, entry, 1 << 20)
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
