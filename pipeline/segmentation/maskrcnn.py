"""Mask R-CNN instances in the Cityscapes encoding (paper section 4: "instance segmentation masks
from Mask R-CNN"), with torchvision's implementation.

- ``pretrained``: torchvision's COCO Mask R-CNN (registry entry ``maskrcnn_resnet50_fpn_coco``);
  COCO classes map to the Cityscapes thing classes (person, car, truck, bus, train, motorcycle,
  bicycle; a person riding a bicycle/motorcycle becomes a rider), and each mask is intersected with
  the semantic labels of its class, so instances never contradict the labels stage.
- ``train``: the same detector with 8 Cityscapes thing classes (ResNet-50-FPN, or a lighter
  MobileNetV3-FPN on the CPU with FPN levels at strides 8 / 16 / 32 for small frames), trained from
  scratch on the annotated frames' instance maps; the checkpoint keeps the size it was trained at.

:func:`compose_instance_map` turns detections into one map: class*1000+k for instances, painted in
descending score order without overwriting, and the labelId everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import mobilenet_backbone
from torchvision.ops import MultiScaleRoIAlign

from pipeline.core.checkpoint_files import load_checkpoint
from pipeline.core.cityscapes_labels import ID, INSTANCE_DIVISOR
from pipeline.core.weights import WeightsError, load_into

# the Cityscapes classes with instances that the benchmark evaluates (its 8 "thing" classes)
THING_CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
THING_LABEL_IDS = np.array([ID[name] for name in THING_CLASSES])
# torchvision's COCO category indices -> Cityscapes class
COCO_TO_CITYSCAPES = {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus", 7: "train", 8: "truck"}
RIDDEN = {"bicycle", "motorcycle"}


# MobileNetV3-FPN levels of the trained detector: torchvision's stage indices 2, 3, 5 = the outputs at
# strides 8, 16 and 32 (torchvision's detection default, stages 4 and 5, are both stride 32: a 4x8 map
# on a 256x128 frame, where most street instances are smaller than one cell).
FPN_STAGES = (2, 3, 5)
LEGACY_FPN_STAGES = (4, 5)  # checkpoints written before FPN_STAGES (frozen identity batch norm)
# region proposals sampled per image for the box / mask heads' losses: torchvision's 512 is COCO's
# for 800-pixel images; a street frame holds ~15 instances, and the mask head's cost follows this
# (training steps 2x faster on the CPU at 128)
ROI_SAMPLES = 128


def build(backbone: str = "mobilenet_v3_large", num_classes: int = len(THING_CLASSES) + 1,
          min_size: int = 256, max_size: int = 1024, fpn_stages=FPN_STAGES) -> MaskRCNN:
    """An untrained Mask R-CNN (classes: background + the Cityscapes things). Trained from scratch,
    so the backbones use ordinary batch norm (torchvision's builders freeze it only for pretrained
    weights)."""
    if backbone == "resnet50":
        return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes,
                                     min_size=min_size, max_size=max_size, box_batch_size_per_image=ROI_SAMPLES)
    if backbone != "mobilenet_v3_large":
        raise ValueError(f"Mask R-CNN backbone {backbone!r} unknown (resnet50, mobilenet_v3_large)")
    fpn_stages = tuple(fpn_stages)
    legacy = fpn_stages == LEGACY_FPN_STAGES
    features = mobilenet_backbone(backbone_name=backbone, weights=None, fpn=True, trainable_layers=6,
                                  returned_layers=list(fpn_stages),
                                  **({} if legacy else {"norm_layer": nn.BatchNorm2d}))
    levels = [str(i) for i in range(len(fpn_stages))]  # + the max-pooled level the RPN also sees
    sizes = (16, 32, 64, 128, 256) if legacy else (8, 16, 32, 64, 128)
    anchors = AnchorGenerator((sizes,) * (len(levels) + 1), ((0.5, 1.0, 2.0),) * (len(levels) + 1))
    model = MaskRCNN(features, num_classes=num_classes, min_size=min_size, max_size=max_size,
                     rpn_anchor_generator=anchors, box_batch_size_per_image=ROI_SAMPLES,
                     box_roi_pool=MultiScaleRoIAlign(levels, 7, 2),
                     mask_roi_pool=MultiScaleRoIAlign(levels, 14, 2))
    model.fpn_stages = fpn_stages  # what save() records, so load() rebuilds this layout
    return model


def coco_model(state: dict, source: str | Path) -> MaskRCNN:
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    load_into(model, state, source)
    return model.eval()


def save(path: Path, model: MaskRCNN, backbone: str, meta: dict) -> None:
    from pipeline.core.checkpoint_files import save_checkpoint, stored_meta

    save_checkpoint({"arch": "maskrcnn", "backbone": backbone, "classes": list(THING_CLASSES),
                     "fpn_stages": list(getattr(model, "fpn_stages", FPN_STAGES)),
                     "min_size": model.transform.min_size[0], "max_size": model.transform.max_size,
                     "state_dict": model.state_dict(), "meta": stored_meta(meta)}, path)


def load(path: Path) -> MaskRCNN:
    try:
        checkpoint = load_checkpoint(path, map_location="cpu")
        model = build(checkpoint["backbone"], min_size=checkpoint.get("min_size", 256),  # the size it was trained at
                      max_size=checkpoint.get("max_size", 1024),
                      fpn_stages=checkpoint.get("fpn_stages", LEGACY_FPN_STAGES))
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        raise WeightsError(f"{path}: not a Mask R-CNN checkpoint written by pipeline.stages.train_instances ({err})") from None
    load_into(model, checkpoint["state_dict"], path)
    return model.eval()


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of box a with box b, as a fraction of a's area."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / max((a[2] - a[0]) * (a[3] - a[1]), 1e-6)


def coco_detections_to_cityscapes(output: dict, score_threshold: float) -> list[tuple[str, float, np.ndarray]]:
    """(class name, score, bool mask) per kept COCO detection, riders recognised."""
    keep = [(COCO_TO_CITYSCAPES[int(label)], float(score), box.numpy(), mask[0].numpy() > 0.5)
            for label, score, box, mask in zip(output["labels"], output["scores"], output["boxes"], output["masks"])
            if float(score) >= score_threshold and int(label) in COCO_TO_CITYSCAPES]
    ridden = [box for name, _, box, _ in keep if name in RIDDEN]
    result = []
    for name, score, box, mask in keep:
        if name == "person" and any(_box_overlap(box, other) > 0.3 for other in ridden):
            name = "rider"
        result.append((name, score, mask))
    return result


def trained_detections(output: dict, score_threshold: float) -> list[tuple[str, float, np.ndarray]]:
    return [(THING_CLASSES[int(label) - 1], float(score), mask[0].numpy() > 0.5)
            for label, score, mask in zip(output["labels"], output["scores"], output["masks"])
            if float(score) >= score_threshold and 1 <= int(label) <= len(THING_CLASSES)]


def compose_instance_map(labels: np.ndarray, detections: list[tuple[str, float, np.ndarray]],
                         min_pixels: int = 10) -> tuple[np.ndarray, int]:
    """Cityscapes instance map (uint16) from labelIds and detections; returns it and the count.

    Each mask keeps only pixels whose label is its class (person and rider may swap: the label
    decides), painted in descending score order; an instance smaller than ``min_pixels`` after
    that is dropped.
    """
    out = labels.astype(np.uint16).copy()
    taken = np.zeros(labels.shape, bool)
    counters: dict[int, int] = {}
    for name, _, mask in sorted(detections, key=lambda d: -d[1]):
        allowed = (ID["person"], ID["rider"]) if name in ("person", "rider") else (ID[name],)
        region = mask & np.isin(labels, allowed) & ~taken
        if region.sum() < min_pixels:
            continue
        class_id = int(np.bincount(labels[region], minlength=34).argmax())
        k = counters.get(class_id, 0)
        counters[class_id] = k + 1
        out[region] = class_id * INSTANCE_DIVISOR + k
        taken |= region
    return out, sum(counters.values())


def targets_from_instance_map(instance_map: np.ndarray) -> dict:
    """Mask R-CNN training targets (boxes, labels, masks) from a Cityscapes instance map."""
    boxes, classes, masks = [], [], []
    for value in np.unique(instance_map[instance_map >= INSTANCE_DIVISOR]):
        label_id = int(value) // INSTANCE_DIVISOR
        if label_id not in THING_LABEL_IDS:
            continue
        mask = instance_map == value
        ys, xs = np.nonzero(mask)
        if xs.max() <= xs.min() or ys.max() <= ys.min():
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(int(np.nonzero(THING_LABEL_IDS == label_id)[0][0]) + 1)
        masks.append(mask)
    h, w = instance_map.shape
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(classes, dtype=torch.int64),
            "masks": torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, h, w), dtype=torch.uint8)}


LARGE_PIXELS = 100  # "large" instances of the benchmark: half of synthcity's true instances are under 20 pixels


def match_instances(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5, large: int = LARGE_PIXELS) -> dict:
    """Greedy one-to-one matching of same-class instances by mask IoU: the counts for precision /
    recall at ``threshold`` and the IoUs of the matches (the instance quality benchmark), and the
    recall over the true instances of at least ``large`` pixels alone."""
    def instances(m):
        return {int(v): m == v for v in np.unique(m[m >= INSTANCE_DIVISOR]) if v // INSTANCE_DIVISOR in THING_LABEL_IDS}

    pred_inst, true_inst = instances(pred), instances(truth)
    pairs = []
    for p, pm in pred_inst.items():
        for t, tm in true_inst.items():
            if p // INSTANCE_DIVISOR != t // INSTANCE_DIVISOR:
                continue
            inter = np.logical_and(pm, tm).sum()
            if inter:
                pairs.append((inter / np.logical_or(pm, tm).sum(), p, t))
    used_p, used_t, ious, found = set(), set(), [], set()
    for iou, p, t in sorted(pairs, reverse=True):
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        ious.append(float(iou))
        if iou >= threshold:
            found.add(t)
    large_true = {t for t, tm in true_inst.items() if tm.sum() >= large}
    return {"pred": len(pred_inst), "true": len(true_inst), "ious": ious,
            "tp": len(found), "true_large": len(large_true), "tp_large": len(found & large_true)}
