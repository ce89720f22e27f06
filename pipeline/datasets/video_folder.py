"""Video-folder adapter: every video file under the data root is one sequence.

The sequence name is the file's path below the root without its extension ('/' becomes '__');
the splits come from ``val_videos`` or a ``split_file`` (pipeline/datasets/splits.py: the paper's
FaceForensics split on FaceForensics' ``original_sequences/youtube/c23/videos/``). Frames are decoded by ffmpeg at the configured frame rate and size (pipeline/core/video.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.core.video import decode_to_pngs
from pipeline.datasets import FrameRecord, Sequence, splits


def _videos(ds: Dataset) -> dict[str, Path]:
    root = ds.root
    if not root.is_dir():
        raise InputError(root, f"data root does not exist ({ds.config_key}.root): expected a folder of videos")
    extensions = {e.lower() for e in ds.settings.video_extensions}
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)  # e.g. a killed copy's temporary
        if path.is_file() and not hidden and path.suffix.lower() in extensions:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(path.relative_to(root).with_suffix("")).replace("/", "__"))
            if name in found:
                raise InputError(path, f"has the same sequence name {name!r} as {found[name]}; rename one")
            found[name] = path
    if not found:
        raise InputError(root, f"no video files ({sorted(extensions)}) found ({ds.config_key}.root)")
    return found


def list_sequences(ds: Dataset) -> list[Sequence]:
    return splits.assign(ds, list(_videos(ds)))


def video_path(ds: Dataset, name: str) -> Path:
    videos = _videos(ds)
    if name not in videos:
        raise InputError(ds.root, f"no video for sequence {name!r}")
    return videos[name]


def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    path = video_path(ds, seq.name)
    fcfg = ds.settings.frames
    files, info = decode_to_pngs(path, out_dir, ffmpeg, fcfg.size, fcfg.resize, fcfg.fps, fcfg.max_frames)
    rate = fcfg.fps or info.fps
    return [FrameRecord(index=i, file=f, timestamp=i / rate, source=f"{path}#{i}") for i, f in enumerate(files)]
