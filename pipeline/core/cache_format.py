"""The cache's file format: one safetensors file per shard of sequences with a JSON header (the
``vid2vid`` metadata key) that lists its sequences and the stages' fingerprints. The cache stage
(pipeline/stages/cache.py) writes it; this module is its one header reader, used by the trainer's
loader (model/data.py), synthesis and the evaluation alike.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.errors import InputError

CACHE_FORMAT = "vid2vid-cache"
FLOW_KEYS = ("flow", "confidence", "flow_backward", "confidence_backward")
CONDITION_KEYS = {"labels": ("labels", "instances"), "maps": ("condition",)}


def condition_of(header: dict) -> str:
    """'labels' (Cityscapes labelIds + instances) or 'maps' (face sketch / pose maps); caches made
    before the header said so hold labels."""
    return header.get("condition", "labels")


def keys_of(header: dict) -> tuple[str, ...]:
    return ("frames",) + CONDITION_KEYS[condition_of(header)] + FLOW_KEYS


def condition_channels(header: dict) -> int:
    """Channels of one semantic input frame the cache gives: 34 one-hot + instance edges, or the maps."""
    if condition_of(header) == "labels":
        return header["num_label_ids"] + 1
    return len(header["condition_channels"])


class CacheError(InputError):
    """A cache shard is unreadable or does not match the configuration (an InputError naming the
    shard, so a stage reports it like any bad input)."""


def read_header(path: str | Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CacheError(path, "cache shard does not exist (run the cache stage first)")
    try:
        with safe_open(str(path), framework="numpy") as shard:
            metadata = shard.metadata() or {}
            names = set(shard.keys())
    except Exception as err:  # safetensors signals corrupt files with several error types
        raise CacheError(path, f"corrupt or truncated cache shard ({err})") from None
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
