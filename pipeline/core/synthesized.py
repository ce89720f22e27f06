"""Where a method's synthesized frames are (``results/<ds>/synth/<method>/<seq>/NNNNNN.png``,
written by the synthesize and covst stages) and a sequence's frames beside its cached input maps
and real frames: what evaluation, the side-by-side videos and the preference study read.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import InputError


def method_frame_files(ds, method: str, sequence: str, expected: int, root: Path | None = None) -> list[Path]:
    """The PNG frames of ``method`` for ``sequence``, in order; there must be ``expected`` of them.
    ``root``: another folder of methods than ``results/<ds>/synth`` (future prediction's)."""
    folder = (root or ds.results / "synth") / method / sequence
    files = sorted(folder.glob("*.png"))
    if len(files) != expected:
        raise InputError(folder, f"{len(files)} synthesized frames, expected {expected} (synthesize {method} first)")
    return files


def sequence_frames(ds, methods: list[str], sequence: str):
    """(input maps, real frames, {method: its PNG files}) of one cached sequence: labelIds, or a
    face / pose task's maps, and the real frames from the cache."""
    from pipeline.core.cache_format import CacheShard, condition_of

    for path in sorted((ds.results / "cache").glob("*.safetensors")):
        shard = CacheShard(path)
        if sequence not in [s["name"] for s in shard.sequences()]:
            continue
        key = "condition" if condition_of(shard.header) == "maps" else "labels"
        labels, real = shard.tensor(sequence, key), shard.tensor(sequence, "frames")
        return labels, real, {m: method_frame_files(ds, m, sequence, len(real)) for m in methods}
    raise InputError(ds.results / "cache", f"sequence {sequence} is not in the cache")
