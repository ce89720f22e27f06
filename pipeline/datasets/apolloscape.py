"""Apolloscape adapter (scene parsing; Huang et al. 2018), the paper's second street dataset
(section 4: 73 street videos of 100 to 1000 frames, half for training, half for validation).

Layout, as its archives unpack (``road02_seg.tar.gz``, ``road01_ins.tar.gz``, ...), one or more
road folders under the data root::

    <root>/<road>_<level>/ColorImage/<Record>/Camera <k>/<timestamp>_Camera_<k>.jpg
    <root>/<road>_<level>/Label/<Record>/Camera <k>/<timestamp>_Camera_<k>_bin.png

A sequence is one road, record and camera (``road02_seg_Record022_Camera5``), its frames in
timestamp order. Split (the paper's half and half): the records (road and record) sorted by name,
every second one (the 2nd, 4th, ...) val with both its cameras, so both splits span every road and
no scene is filmed in both. Every frame has a label image in
Apolloscape's class ids, which the labels stage (mode ``given``) and the segmenter's trainer read
through :func:`to_label_ids`, mapped to Cityscapes labelIds by :data:`APOLLO_TO_CITYSCAPES`:

=================================  ===================  =========================================
Apolloscape class (id)             Cityscapes labelId   note
=================================  ===================  =========================================
others (0), unlabeled (255)        unlabeled (0)
rover (1)                          ego vehicle (1)      the acquisition car's own body
sky (17)                           sky (23)
car (33), car_groups (161)         car (26)
motorbicycle (34), _group (162)    motorcycle (32)
bicycle (35), _group (163)         bicycle (33)
person (36), _group (164)          person (24)
rider (37), _group (165)           rider (25)
truck (38), _group (166)           truck (27)
bus (39), _group (167)             bus (28)
tricycle (40), _group (168)        dynamic (5)          no counterpart: a movable void object
road (49)                          road (7)
siderwalk (50)                     sidewalk (8)
traffic_cone (65)                  dynamic (5)          no counterpart: movable
road_pile (66)                     static (4)           no counterpart: fixed
fence (67)                         fence (13)
traffic_light (81)                 traffic light (19)
pole (82)                          pole (17)
traffic_sign (83)                  traffic sign (20)
wall (84)                          wall (12)
dustbin (85)                       static (4)           no counterpart: fixed
billboard (86)                     static (4)           no counterpart: fixed
building (97)                      building (11)
bridge (98), overpass (100)        bridge (15)
tunnel (99)                        tunnel (16)
vegatation (113)                   vegetation (21)
=================================  ===================  =========================================

Any other value in a label image stops with an error naming the file. The ``_instanceIds.png`` of
the ``_ins`` roads are not read (their encoding is not documented with the dataset): instances come
from a detector (``instances`` mode ``pretrained`` or ``train``) or are left out (mode ``none``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.datasets import FrameRecord, Sequence
from pipeline.datasets.image_frames import write_frames

APOLLO_TO_CITYSCAPES = {
    0: 0, 255: 0, 1: 1, 17: 23, 33: 26, 161: 26, 34: 32, 162: 32, 35: 33, 163: 33, 36: 24, 164: 24, 37: 25, 165: 25,
    38: 27, 166: 27, 39: 28, 167: 28, 40: 5, 168: 5, 49: 7, 50: 8, 65: 5, 66: 4, 67: 13, 81: 19, 82: 17, 83: 20,
    84: 12, 85: 4, 86: 4, 97: 11, 98: 15, 100: 15, 99: 16, 113: 21,
}
_LOOKUP = np.full(256, 255, np.uint8)  # 255: not an Apolloscape class
for _apollo, _cityscapes in APOLLO_TO_CITYSCAPES.items():
    _LOOKUP[_apollo] = _cityscapes

_IMAGE = re.compile(r"^(?P<stamp>.+)_Camera_(?P<camera>\d+)\.jpg$", re.IGNORECASE)
SPLITS = ("train", "val")


def to_label_ids(values: np.ndarray, path: str | Path) -> np.ndarray:
    """An Apolloscape label image (class ids) as Cityscapes labelIds; InputError for unknown ids."""
    values = np.asarray(values)
    if values.min() < 0 or values.max() > 255:
        raise InputError(path, f"label values {int(values.min())}..{int(values.max())} are not Apolloscape class ids")
    mapped = _LOOKUP[values.astype(np.uint8)]
    if (mapped == 255).any():
        bad = np.unique(values[mapped == 255])[:10].tolist()
        raise InputError(path, f"label values {bad} are not Apolloscape class ids (pipeline/datasets/apolloscape.py "
                               f"lists the ones it maps)")
    return mapped


def _roads(ds: Dataset) -> list[Path]:
    root = ds.root
    if not root.is_dir():
        raise InputError(root, f"data root does not exist ({ds.config_key}.root): expected a folder holding "
                               f"Apolloscape road folders (e.g. road02_seg/ColorImage/, road02_seg/Label/)")
    roads = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "ColorImage").is_dir())
    if not roads:
        seen = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:8]
        raise InputError(root, f"no Apolloscape road folder (<road>_<level>/ColorImage/<Record>/Camera <k>/) here; "
                               f"found {seen or 'nothing'}")
    return roads


def _images(camera: Path) -> list[Path]:
    """A camera folder's colour images in timestamp order."""
    return sorted((p for p in camera.iterdir() if _IMAGE.match(p.name)), key=lambda p: p.name)


def _cameras(ds: Dataset) -> list[Path]:
    """Every <road>/ColorImage/<Record>/Camera <k>/ folder that holds images, in name order."""
    found = []
    for road in _roads(ds):
        for record in sorted(p for p in (road / "ColorImage").iterdir() if p.is_dir() and not p.name.startswith(".")):
            found += [camera for camera in sorted(p for p in record.iterdir() if p.is_dir() and not p.name.startswith("."))
                      if any(_IMAGE.match(p.name) for p in camera.iterdir())]
    if not found:
        raise InputError(ds.root, "no <timestamp>_Camera_<k>.jpg images under any <road>/ColorImage/<Record>/Camera <k>/")
    return found


def label_path(image: Path) -> Path:
    """The label image of a colour image: the same place under Label/, ``_bin.png``."""
    camera, record, road = image.parent, image.parent.parent, image.parent.parent.parent.parent
    return road / "Label" / record.name / camera.name / f"{image.stem}_bin.png"


def list_sequences(ds: Dataset) -> list[Sequence]:
    """One sequence per camera folder (its folder below the root kept, so extracting it lists only
    that folder); a record's cameras share its split."""
    cameras = _cameras(ds)
    records = sorted({(camera.parents[2].name, camera.parent.name) for camera in cameras})
    split_of = {record: SPLITS[i % 2] for i, record in enumerate(records)}
    seqs = [Sequence(f"{camera.parents[2].name}_{camera.parent.name}_{camera.name.replace(' ', '')}",
                     split_of[(camera.parents[2].name, camera.parent.name)], str(camera.relative_to(ds.root)))
            for camera in cameras]
    return sorted((s for s in seqs if s.split in ds.settings.splits), key=lambda s: s.name)


def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    if not seq.folder:
        raise InputError(ds.root, f"no Apolloscape camera folder for sequence {seq.name}")
    paths = _images(ds.root / seq.folder)
    fcfg = ds.settings.frames
    if fcfg.max_frames:
        paths = paths[: fcfg.max_frames]
    if ds.settings.require_annotations:
        for path in paths:
            if not label_path(path).is_file():
                raise InputError(label_path(path), f"missing: the label image of {path.name} (every Apolloscape "
                                                   f"frame has one under Label/; or set {ds.config_key}."
                                                   f"require_annotations: false)")
    records = []
    for index, path, out in write_frames(paths, out_dir, fcfg):
        label = label_path(path)
        known = label.is_file()
        records.append(FrameRecord(index=index, file=out, timestamp=index / fcfg.sequence_fps, source=str(path),
                                   annotated=known, gt_label=str(label) if known else ""))
    return records
