"""imaginaire / official-vid2vid layout adapter: the folders researchers already have from
NVlabs/imaginaire's vid2vid and fs_vid2vid data preparation::

    <root>/images/<seq>/<any name>.jpg|png      the frames, in sorted order
    <root>/seg_maps/<seq>/...png                street: Cityscapes labelIds per frame
    <root>/landmarks-dlib68/<seq>/...json       face: 68 [x, y] points per frame (sketch mode given)
    <root>/poses-openpose/<seq>/...json         pose: OpenPose JSON per frame (pose mode openpose-json)

or the same under ``<root>/train/`` and ``<root>/val/`` (imaginaire's split folders). Every
per-frame folder is matched to the frames by sorted order, whatever the file names, and must hold
one file per frame. With one layout at the root the splits come from ``val_videos`` or a
``split_file`` (pipeline/datasets/splits.py). The labels stage (mode ``given``) reads seg_maps; the
sketch and pose stages find landmarks-dlib68, poses-openpose and pose_maps-densepose through
:func:`annotation_files`.
DensePose IUV maps (``pose_maps-densepose/``) join the pose maps where the layout has them (or
``pose.densepose_dir`` names them, as for any dataset); ``human_instance_maps/`` are not used (the
pose model takes no instance maps).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.datasets import FrameRecord, Sequence, files_in_order, splits
from pipeline.datasets.image_frames import write_frames

IMAGES = {".jpg", ".jpeg", ".png"}
KINDS = {"seg_maps": IMAGES, "landmarks-dlib68": {".json"}, "poses-openpose": {".json"}, "pose_maps-densepose": IMAGES}


def _layouts(ds: Dataset) -> dict[str, Path]:
    """{split ('' for the root's own layout): the folder holding images/}."""
    root = ds.root
    if not root.is_dir():
        raise InputError(root, f"data root does not exist ({ds.config_key}.root): expected images/<seq>/ "
                               f"(or train/images/<seq>/, val/images/<seq>/)")
    if (root / "images").is_dir():
        return {"": root}
    found = {split: root / split for split in splits.SPLITS if (root / split / "images").is_dir()}
    if not found:
        seen = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:8]
        raise InputError(root, f"no images/<seq>/ folder here or under train/, val/ (imaginaire's layout); "
                               f"found {seen or 'nothing'}")
    return found


def _sequence_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "images").iterdir() if p.is_dir() and not p.name.startswith("."))


def list_sequences(ds: Dataset) -> list[Sequence]:
    layouts = _layouts(ds)
    if "" in layouts:
        return splits.assign(ds, [p.name for p in _sequence_dirs(layouts[""])])
    seqs, seen = [], {}
    for split, folder in layouts.items():
        for path in _sequence_dirs(folder):
            if path.name in seen:
                raise InputError(path, f"sequence {path.name} is also in {seen[path.name]}: a sequence name must be "
                                       f"unique across the splits")
            seen[path.name] = path
            seqs.append(Sequence(path.name, split, split))
    return sorted((s for s in seqs if s.split in ds.settings.splits), key=lambda s: s.name)


def _layout_of(ds: Dataset, seq: Sequence) -> Path:
    layouts = _layouts(ds)
    return layouts[""] if "" in layouts else layouts[seq.split]


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))


def has_annotations(ds: Dataset, kind: str) -> bool:
    """Whether the layout has a ``kind`` folder (pose_maps-densepose: six condition channels)."""
    return any((folder / kind).is_dir() for folder in _layouts(ds).values())


def annotation_folder(ds: Dataset, seq: Sequence, kind: str) -> Path | None:
    """The sequence's folder of per-frame ``kind`` files (seg_maps, landmarks-dlib68,
    poses-openpose) where the layout has one, else None."""
    folder = _layout_of(ds, seq) / kind / seq.name
    return folder if folder.is_dir() else None


def annotation_files(ds: Dataset, seq: Sequence, kind: str, count: int, at_least: bool = False) -> list[Path] | None:
    """The sequence's ``kind`` files in frame order (sorted names), one per frame; None where the
    layout has no such folder. InputError naming the folder when the counts differ."""
    folder = annotation_folder(ds, seq, kind)
    return None if folder is None else files_in_order(folder, KINDS[kind], count, kind, at_least)


def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    folder = _layout_of(ds, seq) / "images" / seq.name
    paths = _files(folder, IMAGES) if folder.is_dir() else []
    if not paths:
        raise InputError(folder, f"no frames ({', '.join(sorted(IMAGES))}) for sequence {seq.name}")
    labels = annotation_files(ds, seq, "seg_maps", len(paths))
    fcfg = ds.settings.frames
    if fcfg.max_frames:
        paths = paths[: fcfg.max_frames]
    records = []
    for index, path, out in write_frames(paths, out_dir, fcfg):
        label = str(labels[index]) if labels else ""
        records.append(FrameRecord(index=index, file=out, timestamp=index / fcfg.sequence_fps, source=str(path),
                                   annotated=bool(label), gt_label=label))
    return records
