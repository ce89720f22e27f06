"""The cache's file format: one safetensors file per shard of sequences with a JSON header (the
``vid2vid`` metadata key) that lists its sequences, the stages' fingerprints and a CRC-32 of every
tensor. The cache stage (pipeline/stages/cache.py) writes it; this module is its one reader
(:func:`read_header`, :class:`CacheShard`), used by the trainer's loader (model/data.py),
synthesis, the side-by-side videos and the evaluation alike. safetensors checks the layout, not
the bytes: a flipped bit in a tensor would be read as data, so :class:`CacheShard` checks each
tensor against its CRC-32 the first time it reads it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from pipeline.core.errors import InputError, remake_advice

CACHE_FORMAT = "vid2vid-cache"
FLOW_KEYS = ("flow", "confidence", "flow_backward", "confidence_backward")
CONDITION_KEYS = {"labels": ("labels", "instances"), "maps": ("condition",)}
CHECK_ROWS = 32  # frames read at a time to check a tensor's CRC-32


def condition_of(header: dict) -> str:
    """'labels' (Cityscapes labelIds + instances) or 'maps' (face sketch / pose maps); caches made
    before the header said so hold labels."""
    return header.get("condition", "labels")


def has_instance_maps(header: dict) -> bool:
    """Whether a labels cache keeps instance maps (not with instances mode none; caches made
    before the header said so do)."""
    return condition_of(header) == "labels" and header.get("instance_maps", True)


def keys_of(header: dict) -> tuple[str, ...]:
    keys = CONDITION_KEYS[condition_of(header)]
    if keys == CONDITION_KEYS["labels"] and not has_instance_maps(header):
        keys = ("labels",)
    return ("frames",) + keys + FLOW_KEYS


def condition_channels(header: dict) -> int:
    """Channels of one semantic input frame the cache gives: 34 one-hot + instance edges (none
    without instance maps), or the maps."""
    if condition_of(header) == "labels":
        return header["num_label_ids"] + int(has_instance_maps(header))
    return len(header["condition_channels"])


class CacheError(InputError):
    """A cache shard is unreadable or does not match the configuration (an InputError naming the
    shard, so a stage reports it like any bad input)."""


def read_header(path: str | Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CacheError(path, f"cache shard does not exist; {remake_advice(path)}")
    try:
        with safe_open(str(path), framework="numpy") as shard:
            metadata = shard.metadata() or {}
            names = set(shard.keys())
    except Exception as err:  # safetensors signals corrupt files with several error types
        raise CacheError(path, f"corrupt or truncated cache shard ({err}); {remake_advice(path)}") from None
    if "vid2vid" not in metadata:
        raise CacheError(path, "not a vid2vid cache shard (no header)")
    header = json.loads(metadata["vid2vid"])
    if header.get("format") != CACHE_FORMAT:
        raise CacheError(path, f"header format {header.get('format')!r}, expected {CACHE_FORMAT!r}")
    if condition_of(header) not in CONDITION_KEYS:
        raise CacheError(path, f"unknown condition {condition_of(header)!r} in the header")
    for seq in header["sequences"]:
        missing = [k for k in keys_of(header) if f"{seq['name']}/{k}" not in names]
        if missing:
            raise CacheError(path, f"sequence {seq['name']} lacks tensors {missing}")
    return header


def cache_fingerprint(shards: list[str | Path]) -> str:
    """What identifies the data a model was trained on: a hash of its shards' headers (their
    sequences, the fingerprints of the stages they came from and the CRC-32 of every tensor), so
    one changed label pixel changes it; the shards' paths do not count."""
    headers = [read_header(path) for path in shards]
    return hashlib.sha256(json.dumps(headers, sort_keys=True).encode()).hexdigest()


def tensor_checksum(array: np.ndarray) -> int:
    """The CRC-32 of an array's bytes as the shard stores them (C order)."""
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


class CacheShard:
    """One open cache shard: its header and its sequences' tensors, each checked against the
    CRC-32 the header records the first time this object reads it (``tensor`` checks what it
    reads; ``slice`` reads the whole tensor once to check it, then the slices). Shards written
    before the checksums existed are read unchecked."""

    def __init__(self, path: str | Path) -> None:
        from safetensors import safe_open

        self.path = Path(path)
        self.header = read_header(self.path)
        self._handle = safe_open(str(self.path), framework="numpy")
        self._checksums = self.header.get("checksums", {})
        self._checked: set[str] = set()

    def sequences(self, split: str | None = None) -> list[dict]:
        """The header's sequence entries, of one split or all."""
        return [seq for seq in self.header["sequences"] if split is None or seq["split"] == split]

    def tensor(self, name: str, key: str) -> np.ndarray:
        """The whole ``<name>/<key>`` tensor, checked."""
        array = self._handle.get_tensor(f"{name}/{key}")
        self._check(f"{name}/{key}", array)
        return array

    def slice(self, name: str, key: str, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of the ``<name>/<key>`` tensor (the tensor checked on first use,
        read a few frames at a time: a long video is never in memory whole)."""
        tensor_name = f"{name}/{key}"
        if tensor_name not in self._checked:
            self._check(tensor_name)
        return self._handle.get_slice(tensor_name)[start:stop]

    def _check(self, tensor_name: str, array: np.ndarray | None = None) -> None:
        expected = self._checksums.get(tensor_name)
        if expected is None:
            self._checked.add(tensor_name)
            return
        if array is not None:
            checksum = tensor_checksum(array)
        else:  # every cache tensor has a frame axis
            rows = self._handle.get_slice(tensor_name)
            checksum, count = 0, rows.get_shape()[0]
            for start in range(0, count, CHECK_ROWS):
                chunk = np.ascontiguousarray(rows[start : min(start + CHECK_ROWS, count)])
                checksum = zlib.crc32(chunk.view(np.uint8).reshape(-1), checksum)
        if checksum != expected:
            raise CacheError(self.path, f"tensor {tensor_name} fails its CRC-32 check: the shard is damaged; "
                                        f"{remake_advice(self.path)}")
        self._checked.add(tensor_name)
