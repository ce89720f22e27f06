"""The Cityscapes label set: labelIds 0..33, trainIds, colours and which classes have instances.

Every stage speaks Cityscapes labelIds (docs/architecture.md, data contracts); this table is the one place
that knows their names. It follows the official ``cityscapesscripts/helpers/labels.py``.
Instance maps use the Cityscapes encoding: ``labelId * 1000 + k`` for pixels of thing classes,
the plain labelId for everything else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Label(NamedTuple):
    name: str
    id: int
    train_id: int  # 255 = ignored in training/evaluation
    category: str
    has_instances: bool
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", False, (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", False, (0, 0, 0)),
    Label("rectification border", 2, 255, "void", False, (0, 0, 0)),
    Label("out of roi", 3, 255, "void", False, (0, 0, 0)),
    Label("static", 4, 255, "void", False, (0, 0, 0)),
    Label("dynamic", 5, 255, "void", False, (111, 74, 0)),
    Label("ground", 6, 255, "void", False, (81, 0, 81)),
    Label("road", 7, 0, "flat", False, (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", False, (244, 35, 232)),
    Label("parking", 9, 255, "flat", False, (250, 170, 160)),
    Label("rail track", 10, 255, "flat", False, (230, 150, 140)),
    Label("building", 11, 2, "construction", False, (70, 70, 70)),
    Label("wall", 12, 3, "construction", False, (102, 102, 156)),
    Label("fence", 13, 4, "construction", False, (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", False, (180, 165, 180)),
    Label("bridge", 15, 255, "construction", False, (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", False, (150, 120, 90)),
    Label("pole", 17, 5, "object", False, (153, 153, 153)),
    Label("polegroup", 18, 255, "object", False, (153, 153, 153)),
    Label("traffic light", 19, 6, "object", False, (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", False, (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", False, (107, 142, 35)),
    Label("terrain", 22, 9, "nature", False, (152, 251, 152)),
    Label("sky", 23, 10, "sky", False, (70, 130, 180)),
    Label("person", 24, 11, "human", True, (220, 20, 60)),
    Label("rider", 25, 12, "human", True, (255, 0, 0)),
    Label("car", 26, 13, "vehicle", True, (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", True, (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", True, (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", True, (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", True, (0, 0, 110)),
    Label("train", 31, 16, "vehicle", True, (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", True, (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", True, (119, 11, 32)),
)

NUM_LABEL_IDS = 34  # labelIds 0..33 (the paper's 35-channel one-hot adds the instance-edge map)
NUM_TRAIN_IDS = 19  # the classes segmenters predict and are scored on (trainIds 0..18; 255 ignored)
LABEL_SET = "cityscapes-labelIds"  # the name cache headers give this label set
ID = {label.name: label.id for label in LABELS}
THING_IDS = tuple(label.id for label in LABELS if label.has_instances)
INSTANCE_DIVISOR = 1000


def color_palette() -> np.ndarray:
    """(34, 3) uint8 colour of each labelId, for visualisation."""
    return np.array([label.color for label in LABELS], dtype=np.uint8)


def train_id_to_label_id() -> np.ndarray:
    """(256,) lookup from trainId to labelId (255 -> 0 'unlabeled')."""
    lut = np.zeros(256, dtype=np.uint8)
    for label in LABELS:
        if label.train_id != 255:
            lut[label.train_id] = label.id
    return lut


def label_id_to_train_id() -> np.ndarray:
    """(256,) lookup from labelId to trainId (ignored classes -> 255)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for label in LABELS:
        lut[label.id] = label.train_id
    return lut


def semantic_from_instance_ids(instance_ids: np.ndarray) -> np.ndarray:
    """labelIds from a Cityscapes instance map (class*1000+k, or class id)."""
    ids = instance_ids.astype(np.int64)
    return np.where(ids >= INSTANCE_DIVISOR, ids // INSTANCE_DIVISOR, ids).astype(np.uint8)
