"""Write a safetensors file frame by frame, in memory that does not grow with the tensors.

safetensors' own writers (``save_file``) take every tensor whole, so packing a 1200-frame video
holds all of it in memory, twice. The format is simple (8-byte little-endian header length, a JSON
header naming each tensor's dtype, shape and byte range, then the bytes), so this writer lays the
tensors out first from their shapes, writes each one's rows in order as they come (a CRC-32 kept
per tensor), and writes the header last into the space reserved for it, padded with spaces as
safetensors pads its own. Files it writes are read by ``safetensors.safe_open`` like any other.

    with StreamWriter(path, {"seq/frames": ((n, h, w, 3), np.uint8), ...}, room_for(draft)) as out:
        out.write("seq/frames", 0, frame)           # rows 0.. in order, one or several at a time
        ...
        out.finish(metadata={"key": "value"})      # metadata may quote out.checksums
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

DTYPES = {np.dtype(np.uint8): "U8", np.dtype(np.uint16): "U16", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64",
          np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}


def room_for(metadata: dict[str, str]) -> int:
    """The header bytes ``metadata`` takes; a draft with every number at its widest bounds the final one."""
    return len(json.dumps({"__metadata__": metadata}, separators=(",", ":")).encode())


class StreamWriter:
    """Tensors of known shapes written row by row into ``path`` (which must not be read meanwhile)."""

    def __init__(self, path: str | Path, tensors: dict[str, tuple[tuple[int, ...], np.dtype]],
                 metadata_room: int) -> None:
        """``metadata_room``: bytes the header's metadata may take (:func:`room_for` a draft of it)."""
        self.path = Path(path)
        self.layout, offset = {}, 0
        for name in sorted(tensors):  # safetensors' own order: the bytes follow the sorted names
            shape, dtype = tensors[name]
            dtype = np.dtype(dtype)
            if dtype not in DTYPES:
                raise ValueError(f"{name}: dtype {dtype} has no safetensors code here")
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            self.layout[name] = {"shape": tuple(shape), "dtype": dtype, "start": offset, "rows": 0}
            offset += size
        self.data_size = offset
        table = json.dumps(self._table(), separators=(",", ":"))
        self.header_room = (len(table) + metadata_room + 7) // 8 * 8
        self.checksums = {name: 0 for name in self.layout}

    def _table(self) -> dict:
        return {name: {"dtype": DTYPES[t["dtype"]], "shape": list(t["shape"]),
                       "data_offsets": [t["start"], t["start"] + int(np.prod(t["shape"], dtype=np.int64)) * t["dtype"].itemsize]}
                for name, t in self.layout.items()}

    def __enter__(self) -> "StreamWriter":
        self.file = open(self.path, "wb")
        self.file.truncate(8 + self.header_room + self.data_size)
        return self

    def write(self, name: str, row: int, values: np.ndarray) -> None:
        """Rows ``row..row+len(values)`` of tensor ``name`` (one row without the leading axis)."""
        t = self.layout[name]
        values = np.ascontiguousarray(values, dtype=t["dtype"])
        if values.shape == t["shape"][1:]:
            values = values[None]
        if values.shape[1:] != t["shape"][1:] or row != t["rows"] or row + len(values) > t["shape"][0]:
            raise ValueError(f"{name}: rows {row}..{row + len(values)} of shape {values.shape[1:]} do not continue "
                             f"the {t['rows']} rows written of {t['shape']}")
        row_bytes = int(np.prod(t["shape"][1:], dtype=np.int64)) * t["dtype"].itemsize
        self.file.seek(8 + self.header_room + t["start"] + row * row_bytes)
        data = values.view(np.uint8).reshape(-1)
        self.file.write(data)
        self.checksums[name] = zlib.crc32(data, self.checksums[name])
        t["rows"] += len(values)

    def finish(self, metadata: dict[str, str]) -> None:
        """Write the header (every tensor must be complete)."""
        short = [name for name, t in self.layout.items() if t["rows"] != t["shape"][0]]
        if short:
            raise ValueError(f"tensors not written to the end: {short[:5]}")
        header = json.dumps({"__metadata__": metadata, **self._table()}, separators=(",", ":")).encode()
        if len(header) > self.header_room:
            raise ValueError(f"the header ({len(header)} bytes) outgrew its room ({self.header_room}); "
                             "give a larger metadata_room")
        self.file.seek(0)
        self.file.write(self.header_room.to_bytes(8, "little") + header.ljust(self.header_room, b" "))
        self.finished = True

    def __exit__(self, kind, error, traceback) -> None:
        self.file.close()
        if kind is None and not getattr(self, "finished", False):
            raise ValueError(f"{self.path}: finish() was not called")
