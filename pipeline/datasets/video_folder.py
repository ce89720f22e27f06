"""Video-folder adapter: every video file under the data root is one sequence.

The sequence name is the file's path below the root without its extension ('/' becomes '__');
the splits come from ``val_videos`` or a ``split_file`` (pipeline/datasets/splits.py: the paper's
FaceForensics split on FaceForensics' ``original_sequences/youtube/c23/videos/``). Frames are decoded by ffmpeg at the configured frame rate and size (pipeline/core/video.py).
Frames with decode errors are marked in their records; a video with a larger share of them than
``frames.max_decode_errors`` tolerates stops with an InputError naming it and the frames.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.core.stage import frames_listed
from pipeline.core.video import DecodedVideo, decode_to_pngs
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


def check_decode_errors(ds: Dataset, path: Path, video: DecodedVideo) -> None:
    """InputError when a larger share of the frames has decode errors than frames.max_decode_errors
    tolerates (fewer are the frames stage's warning)."""
    limit, damaged = ds.settings.frames.max_decode_errors, video.frames_with_errors
    if len(damaged) > limit * len(video.frames):
        raise InputError(path, f"damaged: ffmpeg reports decode errors in {frames_listed(damaged, len(video.frames))} "
                               f"(first: {video.first_error!r}); {ds.config_key}.frames.max_decode_errors "
                               f"tolerates {limit:.1%}")


def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    path = video_path(ds, seq.name)
    fcfg = ds.settings.frames
    video = decode_to_pngs(path, out_dir, ffmpeg, fcfg.size, fcfg.resize, fcfg.fps, fcfg.max_frames)
    check_decode_errors(ds, path, video)
    rate = fcfg.fps or video.info.fps
    damaged = set(video.frames_with_errors)
    return [FrameRecord(index=i, file=f, timestamp=i / rate, source=f"{path}#{i}", decode_error=i in damaged)
            for i, f in enumerate(video.frames)]
