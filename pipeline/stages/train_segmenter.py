"""Stage 'train_segmenter': train the DeepLabV3 of labels mode ``train`` on the dataset's annotated
frames (paper section 4: the Cityscapes labels come from a DeepLabV3 trained on
the fine annotations), then report its mIoU on the annotated frames of the evaluation split.

    python -m pipeline.stages.train_segmenter --dataset demo --out results/demo/segmenter/model.pt

Training frames: the frames stage's (already resized) images of every ``annotated`` row of the
train split with their given labelIds, mapped to trainIds (255 ignored). Augmentation: horizontal
flip and a random rescale (0.75..1.25) cropped / padded back to the frame size. The loss is
cross-entropy with inverse-square-root class-frequency weights (``class_weights``); ``input_scale``
runs the network on upsampled frames and ``decoder`` adds DeepLabV3+'s stride-4 decoder, which small
frames need for thin classes, and ``fine_channels`` a stride-2 stage after it; ``aspp_channels`` /
``decoder_channels`` set the head's width. The
first ``low_res_share`` of the training runs on frames at half size (progressive resizing: steps
about 2.5 times cheaper on a CPU learn the large classes, the rest at full size the thin ones). Adam
with a linear warm-up over ``warmup_steps`` and a poly learning-rate decay over ``steps`` (or over
``minutes`` when that comes first); stops at either. Writes the checkpoint and ``metrics.json``
beside it: mIoU, per-class IoU and what each class is mistaken for on the held-out annotated frames,
inferred as the labels stage will run it (its ``scales`` / ``flip``; the single-scale mIoU beside).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline import datasets
from pipeline.core.atomic import atomic_file
from pipeline.core.cityscapes_labels import LABELS, NUM_TRAIN_IDS
from pipeline.core.cli import annotator_training_main
from pipeline.core.config import Dataset
from pipeline.core.devices import autocast, pick_device, resolve_precision
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_map, read_rgb, resize_map
from pipeline.core.progress import progress as progress_bar
from pipeline.datasets import manifest
from pipeline.segmentation import predict, trainable

log = logging.getLogger("pipeline.stages.train_segmenter")
TRAIN_NAMES = [label.name for label in sorted(LABELS, key=lambda l: l.train_id) if label.train_id < NUM_TRAIN_IDS]


def load_pairs(ds: Dataset, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 frames and (N, H, W) uint8 trainIds, labels fitted like the frames."""
    images, targets = [], []
    for row in rows.itertuples():
        image = read_rgb(ds.results / row.path)
        labels = datasets.to_label_ids(ds, read_map(row.gt_label, np.uint8), row.gt_label)
        labels = resize_map(labels, (image.shape[1], image.shape[0]), ds.settings.frames.resize)
        images.append(image)
        targets.append(predict.LABEL_TO_TRAIN[labels])
    return np.stack(images), np.stack(targets)


def augment(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip + rescale (0.75..1.25) of a batch, cropped or padded (ignore) back to its size."""
    if torch.rand((), generator=generator) < 0.5:
        images, targets = images.flip(-1), targets.flip(-1)
    h, w = images.shape[2:]
    scale = float(0.75 + 0.5 * torch.rand((), generator=generator))
    sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
    images = F.interpolate(images, size=(sh, sw), mode="bilinear", align_corners=False)
    targets = F.interpolate(targets[:, None].float(), size=(sh, sw), mode="nearest")[:, 0].long()
    if scale >= 1:
        y = int(torch.randint(0, sh - h + 1, (), generator=generator))
        x = int(torch.randint(0, sw - w + 1, (), generator=generator))
        return images[:, :, y:y + h, x:x + w], targets[:, y:y + h, x:x + w]
    padded_images = images.new_zeros(images.shape[0], 3, h, w)
    padded_targets = targets.new_full((targets.shape[0], h, w), trainable.IGNORE)
    padded_images[:, :, :sh, :sw], padded_targets[:, :sh, :sw] = images, targets
    return padded_images, padded_targets


def class_weights(targets: np.ndarray) -> torch.Tensor:
    """Inverse square-root class frequencies (mean 1 over the present classes), so thin, rare
    classes (poles, signs, riders) count in the loss; absent classes get weight 0."""
    counts = np.bincount(targets[targets < NUM_TRAIN_IDS].ravel(), minlength=NUM_TRAIN_IDS).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= (counts > 0).sum() / weights.sum()
    return torch.tensor(np.minimum(weights, 10.0), dtype=torch.float32)


def evaluate(model, images: np.ndarray, targets: np.ndarray, device: torch.device, batch: int = 8,
             scales: tuple[float, ...] = (1.0,), flip: bool = False) -> dict:
    """mIoU, pixel accuracy, per-class IoU and confusions of the model on trainId ``targets``,
    inferred at ``scales`` / ``flip`` (:func:`predict.predict_train_ids`)."""
    matrix = np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), np.int64)
    model.eval()
    for start in range(0, len(images), batch):
        pred = predict.predict_train_ids(model, list(images[start:start + batch]), device, scales, flip)
        matrix += predict.confusion(pred, targets[start:start + batch])
    ious = predict.iou_per_class(matrix)
    present = matrix.sum(1) > 0
    return {"miou": round(predict.mean_iou(matrix), 4), "frames": len(images),
            "pixel_accuracy": round(float(np.diag(matrix).sum() / max(matrix.sum(), 1)), 4),
            "iou": {TRAIN_NAMES[c]: round(float(ious[c]), 4) for c in range(NUM_TRAIN_IDS) if present[c]},
            "mistaken_for": mistaken_for(matrix)}


def mistaken_for(matrix: np.ndarray) -> dict:
    """For each class present in the truth, the class its pixels are most often predicted as
    instead, and that share of its pixels (what a low IoU is made of)."""
    out = {}
    for c in np.nonzero(matrix.sum(1))[0]:
        wrong = matrix[c].copy()
        wrong[c] = 0
        other = int(wrong.argmax())
        if wrong[other]:
            out[TRAIN_NAMES[c]] = [TRAIN_NAMES[other], round(float(wrong[other] / matrix[c].sum()), 4)]
    return out


def build_model(settings) -> trainable.TorchvisionDeepLabV3:
    """The untrained segmenter that the ``labels.train`` settings (``ds.settings.labels.train``) describe."""
    return trainable.TorchvisionDeepLabV3(settings.backbone, input_scale=settings.input_scale,
                                          decoder=settings.decoder, aspp_channels=settings.aspp_channels,
                                          decoder_channels=settings.decoder_channels,
                                          fine_channels=settings.fine_channels)


def _fit(model, images: np.ndarray, targets: np.ndarray, settings, dev: torch.device, generator: torch.Generator,
         name: str) -> tuple[int, float, float]:
    """The training loop: Adam, warm-up then poly decay over the steps (or the time limit), half-size
    frames for the first low_res_share of it. Returns (steps run, seconds, final loss)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    weights = class_weights(targets).to(dev) if settings.class_weights else None
    steps, limit = settings.steps, settings.minutes
    # the training frames stay uint8, on the GPU when they take under a quarter of its free memory
    # (no copy per step); a batch is converted after it is drawn
    store = dev if dev.type == "cuda" and 4 * (images.nbytes + targets.nbytes) < torch.cuda.mem_get_info(dev)[0] \
        else torch.device("cpu")
    all_images = torch.from_numpy(images).permute(0, 3, 1, 2).to(store)
    all_targets = torch.from_numpy(targets).to(store)
    start, losses, step, low_res = time.perf_counter(), deque(maxlen=50), 0, settings.low_res_share > 0
    precision = resolve_precision("auto", dev)  # bf16 where the device has it in hardware (CPU: 11% faster steps)
    progress = progress_bar(total=steps, desc=f"segmenter {name}", unit="step")
    for step in range(1, steps + 1):
        index = torch.randint(0, len(images), (settings.batch,), generator=generator).to(store)
        batch_images, batch_targets = augment(all_images[index].to(dev).float(), all_targets[index].to(dev).long(),
                                              generator)
        progress_done = (step - 1) / steps  # poly decay over the steps, or over the time limit
        if limit:
            progress_done = max(progress_done, (time.perf_counter() - start) / (60 * limit))
        if progress_done < settings.low_res_share:  # progressive resizing: half-size frames first
            batch_images = F.interpolate(batch_images, scale_factor=0.5, mode="bilinear", align_corners=False,
                                         antialias=True)
            batch_targets = batch_targets[:, ::2, ::2]
        elif low_res:
            low_res = False
            log.info("step %d: full-size frames from here on (low_res_share %s)", step, settings.low_res_share)
        warmup = min(1.0, step / settings.warmup_steps) if settings.warmup_steps else 1.0
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * warmup * max(1 - progress_done, 0.0) ** 0.9
        with autocast(precision, dev):
            logits = model(batch_images.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits.float(), batch_targets, weight=weights, ignore_index=trainable.IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())  # read back every 50 steps: no wait for the GPU at each step
        progress.update()
        if step % 50 == 0:
            recent = torch.stack(list(losses)).mean().item()
            progress.set_postfix(loss=f"{recent:.3f}")
            log.info("step %d loss %.4f", step, recent)
        if limit and time.perf_counter() - start > 60 * limit:
            log.info("stopping after %.1f minutes (minutes: %s)", (time.perf_counter() - start) / 60, limit)
            break
    progress.close()
    return step, time.perf_counter() - start, torch.stack(list(losses)).mean().item()


def _held_out_metrics(ds: Dataset, model, held_out: pd.DataFrame, split: str, dev: torch.device) -> dict:
    """mIoU and accuracy on the held-out annotated frames, with the labels stage's inference (and
    the network alone, when that inference adds scales or flips)."""
    held_images, held_targets = load_pairs(ds, held_out)
    inference = predict.inference_settings(ds.settings.labels)
    metrics = {"split": split, "inference": inference, **evaluate(model, held_images, held_targets, dev, **inference)}
    if inference != {"scales": [1.0], "flip": False}:  # what the network alone gives
        single = evaluate(model, held_images, held_targets, dev)
        metrics["single_scale"] = {k: single[k] for k in ("miou", "pixel_accuracy")}
    log.info("held-out mIoU %.4f on %d frames (scales %s, flip %s)", metrics["miou"],
             len(held_images), inference["scales"], inference["flip"])
    return metrics


def train(ds: Dataset, out: Path, device: str = "auto", eval_split: str | None = None) -> dict:
    """Train the dataset's DeepLabV3 on its annotated train frames, score it on the held-out split
    and write the model (``out``) and metrics.json beside it; returns the metrics."""
    settings = ds.settings.labels.train
    rows = manifest.annotated_rows(ds, "train")
    if rows.empty:
        raise InputError(ds.results / "frames",
                         f"no annotated frames with labels in the train split of {ds.name}: mode 'train' "
                         "needs the dataset's annotated subset (Cityscapes gtFine)")
    images, targets = load_pairs(ds, rows)
    eval_split = eval_split or ds.settings.evaluate.split
    held_out = manifest.annotated_rows(ds, eval_split)
    log.info("training %s DeepLabV3 on %d annotated frames (%dx%d); %d held-out frames (%s)",
             settings.backbone, len(images), images.shape[2], images.shape[1], len(held_out), eval_split)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    dev = pick_device(device)
    model = build_model(settings)
    if settings.imagenet_backbone:
        model.load_imagenet_backbone()
    model = model.to(dev).to(memory_format=torch.channels_last).train()
    steps, seconds, final_loss = _fit(model, images, targets, settings, dev, generator, ds.name)
    metrics = {"dataset": ds.name, "backbone": settings.backbone, "steps": steps, "seconds": round(seconds, 1),
               "train_frames": len(images), "final_loss": round(final_loss, 4),
               "device": str(dev), "settings": dataclasses.asdict(settings)}
    if not held_out.empty:
        metrics["held_out"] = _held_out_metrics(ds, model, held_out, eval_split, dev)
    metrics["train"] = {k: v for k, v in evaluate(model, images, targets, dev).items() if k in ("miou", "frames", "pixel_accuracy")}
    trainable.save(out, model.cpu(), metrics)
    with atomic_file(out.with_name("metrics.json")) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    return metrics


@main_guard
def main(argv: list[str] | None = None) -> None:
    annotator_training_main("python -m pipeline.stages.train_segmenter", __doc__, "segmenter/model.pt", train, argv)


if __name__ == "__main__":
    main()
