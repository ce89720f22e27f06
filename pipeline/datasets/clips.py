"""Names of the real sample clips a dataset lists in ``generate.clips`` (the sample_clips stage copies
them into the data root): the file each entry becomes there, and the sequence the video-folder
adapter makes of it. Known from the config alone, so Snakemake lists them before the files exist.
"""

from __future__ import annotations

from pathlib import Path


def sequence_name(entry: str | dict) -> str:
    """The sequence name the video-folder adapter gives a clip at the root (its stem)."""
    return Path(clip_file(entry)).stem.replace(".", "_")


def clip_file(entry: str | dict) -> str:
    """The file name an entry of ``generate.clips`` gets in the data root."""
    return entry if isinstance(entry, str) else f"{entry['name']}.mp4"
