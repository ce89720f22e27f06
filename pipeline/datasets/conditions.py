"""What the generator is conditioned on, per task, and which frames it learns to make (paper section 4).

- ``street``: Cityscapes labelIds + instance maps (the labels and instances stages) on the frames
  the frames stage wrote; the cache keeps ``labels`` and ``instances`` and the trainer makes the
  one-hot + edge channels on the device. With ``instances: {mode: none}`` (the official
  ``--no_instance``, for data with no instance maps and no detector) there is no instances stage:
  the cache keeps ``labels`` alone and says so (``instance_maps: false``), and the generator's
  input has no edge channel (34 channels).
- ``face``: the edge-to-face sketch (the sketch stage, one channel); the training targets are the
  sketch stage's cropped frames (``sketch/<seq>/frames/``), since that stage decides the crop.
  With ``sketch.style: official``, the input of NVIDIA's edge2face_512 instead: the edge map, 14
  distance maps and the face parts map (16 channels, pipeline/face/official_input.py).
- ``pose``: the OpenPose-style pose map (the pose stage, RGB), plus DensePose IUV (3 channels) when
  ``pose.densepose_dir`` is set or the layout has them (imaginaire's pose_maps-densepose/);
  targets are the pose stage's person-centred crops.

For face and pose the cache keeps these maps as one uint8 tensor ``condition`` [T, H, W, C]
beside the frames, with the channel names in its header (``condition_channels``); the trainer
feeds them to the generator scaled to [-1, 1] (the official recipe's normalised label input), so a
run's ``model.label_nc`` is the number of channels listed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.core.images import read_map, read_rgb
from pipeline.datasets import Sequence, given

SOURCE_STAGE = {"street": None, "face": "sketch", "pose": "pose"}


def source_stage(ds: Dataset) -> str | None:
    """The stage whose maps condition the generator (None: the labels and instances stages)."""
    return SOURCE_STAGE[ds.settings.task]


def has_instance_maps(ds: Dataset) -> bool:
    """Whether a street dataset's generator gets instance edges (instances mode other than none)."""
    return source_stage(ds) is None and ds.settings.instances.mode != "none"


def annotation_stages(ds: Dataset) -> tuple[str, ...]:
    """The stages a cache shard packs besides the frames: labels, instances (unless mode none)
    and flow; face / pose: their maps' stage and flow."""
    stage = source_stage(ds)
    if stage is not None:
        return (stage, "flow")
    return ("labels", "instances", "flow") if has_instance_maps(ds) else ("labels", "flow")


def has_densepose(ds: Dataset) -> bool:
    """Whether a pose dataset's condition adds DensePose IUV: ``pose.densepose_dir`` is set, or its
    layout has them (imaginaire's pose_maps-densepose/)."""
    from pipeline import datasets

    return bool(ds.settings.pose.densepose_dir) or datasets.has_annotations(ds, "pose_maps-densepose")


def channels(ds: Dataset) -> list[str]:
    """Names of the condition channels of a face / pose dataset (what ``model.label_nc`` counts)."""
    task = ds.settings.task
    if task == "face":
        if ds.settings.sketch.style == "official":
            from pipeline.face.official_input import CHANNELS

            return list(CHANNELS)
        return ["sketch"]
    if task == "pose":
        names = ["pose_r", "pose_g", "pose_b"]
        if has_densepose(ds):
            names += ["densepose_i", "densepose_u", "densepose_v"]
        return names
    raise ValueError(f"task {task!r} is conditioned on labels and instances, not on maps")


def _numbered(folder: Path, count: int | None = None) -> list[Path]:
    files = sorted(folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"))
    expected = [f"{i:06d}.png" for i in range(len(files))]
    if [f.name for f in files] != expected:
        missing = sorted(set(expected) - {f.name for f in files})
        raise InputError(folder, f"frames are not numbered 000000.png.. without gaps (missing {missing[:5]})")
    if not files:
        raise InputError(folder, "no frames (run its stage first)")
    if count is not None and len(files) != count:
        raise InputError(folder, f"{len(files)} images, expected {count} (one per frame)")
    return files


def frame_paths(ds: Dataset, seq: Sequence) -> list[Path]:
    """The frames the generator learns to make: the frames stage's, or the face / pose crops."""
    stage = source_stage(ds)
    table, _ = given.sequence_manifest(ds, seq)
    if stage is None:
        return [ds.results / path for path in table.path]
    return _numbered(ds.results / stage / seq.name / "frames", len(table))


def condition_path(ds: Dataset, seq: Sequence, index: int) -> Path:
    """The sketch / pose map of one frame (DensePose IUV, where given, sits in densepose/ beside it;
    the official face input is an .npz of its 16 maps in official/)."""
    if ds.settings.task == "face" and ds.settings.sketch.style == "official":
        return ds.results / "sketch" / seq.name / "official" / f"{index:06d}.npz"
    return ds.results / source_stage(ds) / seq.name / f"{index:06d}.png"


def read_condition(ds: Dataset, path: Path, densepose: bool) -> np.ndarray:
    """(H, W, C) uint8 condition maps of one frame of a face / pose sequence (``path``:
    condition_path; ``densepose``: has_densepose(ds), worked out once by the caller)."""
    if ds.settings.task == "face":
        if path.suffix == ".npz":
            return read_official_maps(path)
        return read_map(path, np.uint8)[..., None]
    maps = [read_rgb(path)]
    if densepose:
        maps.append(read_rgb(path.parent / "densepose" / path.name))
    return np.concatenate(maps, axis=-1)


def read_official_maps(path: Path) -> np.ndarray:
    """(H, W, 16) uint8 official face input of one frame (the sketch stage's official/NNNNNN.npz)."""
    from pipeline.face.official_input import CHANNELS, PART_LABELS

    if not path.is_file():
        raise InputError(path, "missing: the sketch stage (style official) writes one per frame")
    try:
        with np.load(path) as stored:
            maps = stored["maps"]
    except Exception as err:  # noqa: BLE001 - a cut or foreign file
        raise InputError(path, f"not a readable official face input ({type(err).__name__}: {err})") from None
    if maps.dtype != np.uint8 or maps.ndim != 3 or maps.shape[-1] != len(CHANNELS):
        raise InputError(path, f"expected (H, W, {len(CHANNELS)}) uint8 maps, found {maps.shape} {maps.dtype}")
    if maps[..., -1].max() >= PART_LABELS:  # the parts map indexes the encoder's features per part
        raise InputError(path, f"face parts map holds {int(maps[..., -1].max())}, expected 0..{PART_LABELS - 1}")
    return maps
