"""Stage 'train_instances': train the Mask R-CNN of instances mode ``train`` on the dataset's
annotated frames (their instance maps), then measure it on the held-out annotated frames.

    python -m pipeline.stages.train_instances --dataset demo --out results/demo/instance_model/model.pt

Settings: ``datasets.<ds>.instances.train`` (steps, minutes, batch, lr, seed) backbone
(MobileNetV3-FPN or ResNet-50-FPN). Augmentation: horizontal flip.
Quality (``metrics.json``): same-class instances matched one-to-one by mask IoU, with precision
and recall at IoU 0.5 and the mean IoU of the matches; detections are cut by the true labels here,
as the stage cuts them by the labels stage's maps; recall is also given over the true instances of at
least 100 pixels alone (most of a street frame's instances are a few far-away pixels).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.core.atomic import atomic_file
from pipeline.core.cityscapes_labels import semantic_from_instance_ids
from pipeline.core.cli import annotator_training_main
from pipeline.core.config import Dataset
from pipeline.core.devices import pick_device
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_map, read_rgb, resize_map
from pipeline.core.progress import progress as progress_bar
from pipeline.datasets import manifest
from pipeline.segmentation import maskrcnn

log = logging.getLogger("pipeline.stages.train_instances")


def load_examples(ds: Dataset, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rows = manifest.annotated_rows(ds, split)
    rows = rows[rows.gt_instance != ""]
    examples = []
    for row in rows.itertuples():
        image = read_rgb(ds.results / row.path)
        instances = read_map(row.gt_instance, np.int64).astype(np.uint16)
        instances = resize_map(instances, (image.shape[1], image.shape[0]), ds.settings.frames.resize)
        examples.append((image, instances))
    return examples


def to_tensor(image: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(device)


def evaluate(model, examples, device, score_threshold: float) -> dict:
    model.eval()
    totals = {"pred": 0, "true": 0, "tp": 0, "true_large": 0, "tp_large": 0, "ious": []}
    with torch.inference_mode():
        for image, truth in examples:
            output = {k: v.cpu() for k, v in model([to_tensor(image, device)])[0].items()}
            detections = maskrcnn.trained_detections(output, score_threshold)
            pred, _ = maskrcnn.compose_instance_map(semantic_from_instance_ids(truth), detections)
            found = maskrcnn.match_instances(pred, truth)
            for key in ("pred", "true", "tp", "true_large", "tp_large"):
                totals[key] += found[key]
            totals["ious"] += found["ious"]
    return {"frames": len(examples), "true_instances": totals["true"], "predicted": totals["pred"],
            "precision@0.5": round(totals["tp"] / max(totals["pred"], 1), 4),
            "recall@0.5": round(totals["tp"] / max(totals["true"], 1), 4),
            f"recall@0.5 (>= {maskrcnn.LARGE_PIXELS} px)": round(totals["tp_large"] / max(totals["true_large"], 1), 4),
            "true_large_instances": totals["true_large"],
            "matched_iou": round(float(np.mean(totals["ious"])) if totals["ious"] else 0.0, 4)}


def train(ds: Dataset, out: Path, device: str = "auto") -> dict:
    settings = ds.settings.instances.train
    backbone = settings.backbone
    examples = [e for e in load_examples(ds, "train") if (e[1] >= 1000).any()]
    if not examples:
        raise InputError(ds.results / "frames", f"no annotated frames with instances in the train split of {ds.name}: "
                                                "mode 'train' needs the annotated subset's instance maps")
    held_out = load_examples(ds, ds.settings.evaluate.split)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    dev = pick_device(device)
    height = examples[0][0].shape[0]
    model = maskrcnn.build(backbone, min_size=height, max_size=4 * height).to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=settings.lr)
    targets = [maskrcnn.targets_from_instance_map(truth) for _, truth in examples]
    log.info("training Mask R-CNN (%s) on %d annotated frames, %d instances", backbone, len(examples),
             sum(len(t["labels"]) for t in targets))
    start, losses, step = time.perf_counter(), [], 0
    progress = progress_bar(total=settings.steps, desc=f"instances {ds.name}", unit="step")
    for step in range(1, settings.steps + 1):
        index = torch.randint(0, len(examples), (settings.batch,), generator=generator).tolist()
        images, batch_targets = [], []
        for i in index:
            image, target = to_tensor(examples[i][0], dev), {k: v.to(dev) for k, v in targets[i].items()}
            if torch.rand((), generator=generator) < 0.5:
                width = image.shape[-1]
                image = image.flip(-1)
                boxes = target["boxes"].clone()
                boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
                target = {"boxes": boxes, "labels": target["labels"], "masks": target["masks"].flip(-1)}
            images.append(image)
            batch_targets.append(target)
        loss = sum(model(images, batch_targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        progress.update()
        if step % 25 == 0:
            progress.set_postfix(loss=f"{np.mean(losses[-25:]):.3f}")
            log.info("step %d loss %.4f", step, np.mean(losses[-25:]))
        if settings.minutes and time.perf_counter() - start > 60 * settings.minutes:
            log.info("stopping after %.1f minutes", (time.perf_counter() - start) / 60)
            break
    progress.close()
    metrics = {"dataset": ds.name, "backbone": backbone, "steps": step,
               "seconds": round(time.perf_counter() - start, 1), "train_frames": len(examples),
               "final_loss": round(float(np.mean(losses[-25:])), 4), "device": str(dev), "settings": dataclasses.asdict(settings)}
    if held_out:
        metrics["held_out"] = evaluate(model, held_out, dev, ds.settings.instances.score_threshold)
        log.info("held-out: %s", metrics["held_out"])
    maskrcnn.save(out, model.cpu(), backbone, metrics)
    with atomic_file(out.with_name("metrics.json")) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    return metrics


@main_guard
def main(argv: list[str] | None = None) -> None:
    annotator_training_main("python -m pipeline.stages.train_instances", __doc__, "instance_model/model.pt", train, argv)


if __name__ == "__main__":
    main()
