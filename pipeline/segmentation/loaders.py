"""The segmenter of a dataset, one loader per labels mode (paper section 4: DeepLabV3 semantic maps).

- ``pretrained``: mmsegmentation's DeepLabV3 of a weights-registry entry (``labels.model``; its
  ResNet depth from :data:`.mmseg_deeplabv3.CHECKPOINT_DEPTHS`), verified against the registry;
- ``train``: the DeepLabV3 the train_segmenter stage trained on the dataset's annotated frames
  (``<results>/<ds>/segmenter/model.pt``).

The labels stage segments every frame with it, and the evaluation's segmentation consistency
scores the synthesized frames with the same network (:func:`load`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError


@dataclass(frozen=True)
class Segmenter:
    model: object
    description: str
    sha256: str | None


def segmenter_path(ds: Dataset) -> Path:
    return ds.results / "segmenter" / "model.pt"


@functools.lru_cache(maxsize=2)
def load_pretrained(name: str, weights: str | None):
    """The mmseg DeepLabV3 of registry entry ``name`` with its checkpoint (verified)."""
    import torch

    from pipeline.core.weights import DEFAULT_ENTRIES, load_into, resolve
    from pipeline.segmentation.mmseg_deeplabv3 import (
        CHECKPOINT_DEPTHS,
        DeepLabV3,
        state_dict_of_checkpoint,
    )

    if name not in CHECKPOINT_DEPTHS:
        raise InputError("labels.model", f"{name!r} is not an mmseg DeepLabV3 checkpoint of the weights registry "
                                         f"(known: {', '.join(CHECKPOINT_DEPTHS)})")
    path = resolve(DEFAULT_ENTRIES[name], user_path=weights)
    model = DeepLabV3(depth=CHECKPOINT_DEPTHS[name])
    load_into(model, state_dict_of_checkpoint(torch.load(path, map_location="cpu", weights_only=True)), path)
    return model.eval()


@functools.lru_cache(maxsize=2)
def load_trained(path: Path):
    from pipeline.segmentation import require_trained, trainable

    return trainable.load(require_trained(path, "segmenter", "train_segmenter", "labels mode"))


def _pretrained(ds: Dataset) -> Segmenter:
    from pipeline.core.weights import DEFAULT_ENTRIES

    settings = ds.settings.labels
    model = load_pretrained(settings.model, settings.weights)
    return Segmenter(model, f"mmseg DeepLabV3 ({settings.model})", DEFAULT_ENTRIES[settings.model].sha256)


def _trained(ds: Dataset) -> Segmenter:
    from pipeline.core.weights import sha256_of

    path = segmenter_path(ds)
    model = load_trained(path)
    return Segmenter(model, f"the dataset's trained segmenter (DeepLabV3 {model.backbone_name}, {path.name})",
                     sha256_of(path))


LOADERS = {"pretrained": _pretrained, "train": _trained}


def load(ds: Dataset) -> Segmenter:
    """The dataset's segmenter (labels mode 'pretrained' or 'train'); InputError for other modes or a
    missing trained model, WeightsError for missing or wrong pretrained weights."""
    mode = ds.settings.labels.mode
    if mode not in LOADERS:
        raise InputError(f"datasets.{ds.name}.labels.mode", f"{mode!r} has no segmenter (modes with one: "
                                                            f"{', '.join(LOADERS)})")
    return LOADERS[mode](ds)
