"""Batched segmentation of frames: RGB uint8 in, Cityscapes labelIds (uint8) out.

The segmenters predict the 19 trainIds; :data:`TRAIN_TO_LABEL` maps them back to labelIds, the
encoding every later stage uses. Runs on the GPU when there is one (``device='auto'``), in bf16
autocast where the device computes bf16 in hardware (a GPU, a CPU with AVX512-BF16 or AMX: 1.5x
faster on the CPU; pipeline/core/devices.py); optionally at several scales and mirrored, averaging the class probabilities
(the labels stage's ``scales`` / ``flip``).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.cityscapes_labels import (
    NUM_TRAIN_IDS,
    label_id_to_train_id,
    train_id_to_label_id,
)
from pipeline.core.devices import autocast, resolve_precision

TRAIN_TO_LABEL = train_id_to_label_id()
LABEL_TO_TRAIN = label_id_to_train_id()


def to_batch(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    batch = torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2).float()
    return batch.contiguous(memory_format=torch.channels_last)


def inference_settings(labels) -> dict:
    """``scales`` / ``flip`` of a labels stage's settings (``ds.settings.labels``): how its segmenter
    runs, wherever it does."""
    return {"scales": [float(s) for s in labels.scales], "flip": bool(labels.flip)}


@torch.inference_mode()
def predict_train_ids(model: torch.nn.Module, frames: list[np.ndarray], device: torch.device,
                      scales: Sequence[float] = (1.0,), flip: bool = False) -> np.ndarray:
    """(N, H, W) uint8 trainIds for a list of (H, W, 3) uint8 RGB frames of one size. With several
    ``scales`` and / or ``flip``, the class probabilities of every (scale, mirror) pass are averaged
    at the frames' size: DeepLabV3's multi-scale + flip inference (Chen et al. 2017, section 4.1)."""
    rgb = to_batch(frames, device)
    size = rgb.shape[2:]
    probabilities = torch.zeros((), device=device)
    precision = resolve_precision("auto", device)
    for scale in scales:
        scaled = rgb if scale == 1.0 else F.interpolate(rgb, scale_factor=scale, mode="bilinear", align_corners=False)
        for mirrored in (False, True) if flip else (False,):
            with autocast(precision, device):
                logits = model(scaled.flip(-1) if mirrored else scaled).float()
            logits = F.interpolate(logits.flip(-1) if mirrored else logits, size=size, mode="bilinear",
                                   align_corners=False)
            probabilities = probabilities + logits.softmax(1)
    # max(1).indices: argmax(1) over the channels of an (N, C, H, W) tensor took 6x as long on the CPU
    return probabilities.max(1).indices.to(torch.uint8).cpu().numpy()


def segment(model: torch.nn.Module, frames: Iterable[np.ndarray], device: torch.device, batch: int = 8,
            scales: Sequence[float] = (1.0,), flip: bool = False) -> Iterator[np.ndarray]:
    """Yield the labelIds map of every frame, in order (``scales`` / ``flip``: as
    :func:`predict_train_ids`)."""
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    pending: list[np.ndarray] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch:
            yield from TRAIN_TO_LABEL[predict_train_ids(model, pending, device, scales, flip)]
            pending = []
    if pending:
        yield from TRAIN_TO_LABEL[predict_train_ids(model, pending, device, scales, flip)]


def confusion(pred_train: np.ndarray, true_train: np.ndarray, num_classes: int = NUM_TRAIN_IDS) -> np.ndarray:
    """(C, C) counts of (true, predicted) trainIds over pixels whose truth is not ignored."""
    keep = true_train < num_classes
    index = true_train[keep].astype(np.int64) * num_classes + pred_train[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN for classes absent from truth and prediction."""
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """mIoU over the classes present in the ground truth (the Cityscapes convention on a subset)."""
    present = matrix.sum(1) > 0
    return float(np.nanmean(iou_per_class(matrix)[present])) if present.any() else float("nan")
