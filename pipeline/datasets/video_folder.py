"""Video-folder adapter: every video file under the data root is one sequence.

The sequence name is the file's path below the root without its extension ('/' becomes '__');
names listed in ``val_videos`` form the val split, the rest is train. A ``split_file`` (JSON or
YAML, ``{train: [names], val: [names]}``) names every split's videos instead, leaving out the
videos it does not name: the paper's FaceForensics split (704 training, 150 validation videos,
config/splits/faceforensics.yaml) on FaceForensics' ``original_sequences/youtube/c23/videos/``.
Frames are decoded by ffmpeg at the configured frame rate and size (pipeline/core/video.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.core.video import decode_to_pngs
from pipeline.datasets import FrameRecord, Sequence

SPLITS = ("train", "val", "test")


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


def read_split_file(path: str | Path) -> dict[str, str]:
    """{sequence name: split} from a split file; InputError naming it when it is malformed."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read the split file ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError(path, "expected a mapping of split names to lists of sequence names, e.g. "
                               "{train: [000, 001], val: [002]}")
    unknown = sorted(set(data) - set(SPLITS))
    if unknown:
        raise InputError(path, f"unknown splits {unknown} (have {list(SPLITS)})")
    splits: dict[str, str] = {}
    for split, names in data.items():
        for name in map(str, names):
            if name in splits:
                raise InputError(path, f"sequence {name} is in both {splits[name]} and {split}")
            splits[name] = split
    return splits


def list_sequences(ds: Dataset) -> list[Sequence]:
    videos = _videos(ds)
    if ds.settings.split_file:
        splits = read_split_file(ds.settings.split_file)
        missing = sorted(set(splits) - set(videos))
        if missing:
            raise InputError(ds.settings.split_file, f"names {len(missing)} sequences with no video under {ds.root} "
                                                     f"(e.g. {missing[:5]}; the videos there are e.g. {sorted(videos)[:3]})")
        seqs = [Sequence(name, splits[name]) for name in videos if name in splits]
    else:
        val = set(ds.settings.val_videos)
        seqs = [Sequence(name, "val" if name in val else "train") for name in videos]
    return [s for s in seqs if s.split in ds.settings.splits]


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
