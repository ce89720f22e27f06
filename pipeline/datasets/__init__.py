"""Dataset adapters: which sequences a dataset has, and how to extract each one's frames.

Adapters:
- ``cityscapes``: the ``leftImg8bit_sequence`` layout (+ ``gtFine`` for the annotated frames);
  the generated ``synthcity`` demo is written in this layout and read through it.
- ``apolloscape``: Apolloscape scene parsing (``<road>/ColorImage|Label/<Record>/Camera <k>/``),
  one sequence per record and camera, its class ids mapped to Cityscapes labelIds.
- ``video``: any folder of video files, one sequence per file.
- ``imaginaire``: NVlabs/imaginaire's (and the official vid2vid's) folders: ``images/<seq>/`` with
  ``seg_maps/``, ``landmarks-dlib68/`` or ``poses-openpose/`` beside it, matched by sorted order.

An adapter lists sequences (``list_sequences``), extracts frames (``extract``) and, where its
dataset's label images are not Cityscapes labelIds, maps them (``to_label_ids``); where its layout
carries per-frame annotations for a later stage (landmarks, poses), it lists them
(``annotation_files``).

Snakemake calls :func:`list_sequences` / :func:`shards` while it builds the DAG, so these only
list files; the decoding happens in the frames stage (``python -m pipeline.stages.frames``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError


@dataclass(frozen=True)
class Sequence:
    name: str
    split: str
    # the folder under the split that holds it, where the layout has one (Cityscapes: its city)
    folder: str | None = field(default=None, compare=False)


@dataclass
class FrameRecord:
    """One extracted frame, as the frames stage reports it for the manifest."""

    index: int
    file: Path
    timestamp: float
    source: str
    annotated: bool = False
    gt_label: str = ""
    gt_instance: str = ""
    gt_flow: str = ""
    decode_error: bool = False  # ffmpeg reported a decode error for it (pipeline/core/video.py)


# datasets.<ds>.adapter -> the module that lists its sequences and frames (the config schema's
# enum lists the same names)
ADAPTERS = {"cityscapes": "pipeline.datasets.cityscapes", "apolloscape": "pipeline.datasets.apolloscape",
            "video": "pipeline.datasets.video_folder", "imaginaire": "pipeline.datasets.imaginaire"}


def _adapter(ds: Dataset):
    name = ds.settings.adapter
    if name not in ADAPTERS:
        raise InputError(f"{ds.config_key}.adapter", f"unknown adapter {name!r} (have {', '.join(ADAPTERS)})")
    return importlib.import_module(ADAPTERS[name])


def list_sequences(ds: Dataset) -> list[Sequence]:
    """Every sequence of the dataset's configured splits, sorted by name."""
    if ds.synthcity is not None:  # generated: known from config before the data exists
        from pipeline.datasets import synthcity

        seqs = [Sequence(s.name, s.split, s.city) for s in synthcity.sequences(ds.synthcity)]
        return [s for s in seqs if s.split in ds.settings.splits]
    if ds.sample_clips:  # sample clips: known from config too
        from pipeline.datasets import splits
        from pipeline.datasets.clips import sequence_name

        return splits.assign(ds, [sequence_name(clip) for clip in ds.sample_clips])
    return _adapter(ds).list_sequences(ds)


def to_label_ids(ds: Dataset, values, path):
    """A given label image (``values``, read from ``path``) as Cityscapes labelIds: the adapter's
    mapping where its dataset has ids of its own (Apolloscape), else the values as they are."""
    convert = getattr(_adapter(ds), "to_label_ids", None)
    return convert(values, path) if convert else values


def annotation_files(ds: Dataset, seq: Sequence, kind: str, count: int, at_least: bool = False) -> list[Path] | None:
    """A sequence's per-frame ``kind`` files (imaginaire's landmarks-dlib68, poses-openpose) in
    frame order, where the dataset's layout has them; None otherwise (``at_least``: see
    :func:`files_in_order`)."""
    find = getattr(_adapter(ds), "annotation_files", None)
    return find(ds, seq, kind, count, at_least) if find else None


def has_annotations(ds: Dataset, kind: str) -> bool:
    """Whether the dataset's layout carries per-frame ``kind`` files (imaginaire's folders)."""
    find = getattr(_adapter(ds), "has_annotations", None)
    return bool(find and find(ds, kind))


def files_in_order(folder: Path, suffixes: set[str], count: int, what: str, at_least: bool = False) -> list[Path]:
    """The ``count`` files of a per-frame folder, matched to the frames by sorted name; InputError
    naming the folder when it holds another number (``at_least``: the frames were cut to their
    first ``frames.max_frames``, so the first ``count`` of more files are taken)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".")) \
        if folder.is_dir() else []
    if len(files) < count or (len(files) > count and not at_least):
        raise InputError(folder, f"{len(files)} {what} files for {count} frames: they are matched to the frames "
                                 f"by sorted order, one each")
    return files[:count]


def per_frame_files(ds: Dataset, seq: Sequence, kind: str, setting: str, folder: str | None, count: int,
                    list_folder) -> list:
    """A sequence's per-frame annotation files for a stage: ``list_folder(<folder>/<seq>, count)``
    where the stage's setting names a folder, else the dataset layout's own ``kind`` folder;
    InputError naming the setting when there is neither. With ``frames.max_frames`` the folders
    may hold files for the frames cut off."""
    at_least = bool(ds.settings.frames.max_frames)
    if folder:
        return list_folder(Path(folder) / seq.name, count, at_least)
    files = annotation_files(ds, seq, kind, count, at_least)
    if files is None:
        raise InputError(f"{ds.config_key}.{setting}", f"needs the folder of the per-frame files ({kind}): one "
                                                       f"subfolder per sequence, one file per frame")
    return files


def select(ds: Dataset, names: list[str] | None, listed: list[Sequence] | None = None) -> list[Sequence]:
    """The named sequences of the dataset (all when ``names`` is empty); InputError for unknown
    names. ``listed``: the dataset's list_sequences, where the caller has it already."""
    all_seqs = {s.name: s for s in (listed if listed is not None else list_sequences(ds))}
    if not names:
        return list(all_seqs.values())
    unknown = [n for n in names if n not in all_seqs]
    if unknown:
        raise InputError(ds.root, f"unknown sequences {unknown} (the dataset has {len(all_seqs)}, "
                                  f"e.g. {sorted(all_seqs)[:3]})")
    return [all_seqs[n] for n in names]


def shards(ds: Dataset) -> dict[str, list[Sequence]]:
    """Sequences grouped into jobs of ``sequences_per_job``; a one-sequence shard is named after it."""
    seqs = list_sequences(ds)
    size = ds.settings.sequences_per_job
    if size == 1:
        return {s.name: [s] for s in seqs}
    return {f"part{i // size:04d}": seqs[i : i + size] for i in range(0, len(seqs), size)}


def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    """Write the sequence's frames as out_dir/NNNNNN.png; return one record per frame."""
    return _adapter(ds).extract(ds, seq, out_dir, ffmpeg)
