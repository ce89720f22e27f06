"""Stage 'instances': Cityscapes instance maps (uint16, class*1000+k for things, the class id
otherwise) for every frame, results/<ds>/instances/<seq>/NNNNNN.png.

    python -m pipeline.stages.instances --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.instances.mode``), paper section 4 ("instance masks from Mask R-CNN"):
- ``given``: the dataset ships an instance map per frame (synthcity's ground truth).
- ``pretrained``: torchvision's COCO Mask R-CNN (registry ``maskrcnn_resnet50_fpn_coco``, or
  ``instances.weights``), COCO classes mapped to the Cityscapes things, masks intersected with the
  labels stage's maps (pipeline/segmentation/maskrcnn.py).
- ``train``: the Mask R-CNN that ``python -m pipeline.stages.train_instances`` trained on the annotated
  frames (results/<ds>/instance_model/model.pt), masks intersected with the labels likewise.
- ``none``: no instance maps (the official ``--no_instance``): this stage has nothing to make and
  is not in the DAG; the cache packs the labels alone (pipeline/datasets/conditions.py).
Model modes batch frames on the GPU when there is one (``instances.device``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_map, read_rgb, write_map
from pipeline.core.stage import sequence_stage_main
from pipeline.datasets import Sequence, given


def instance_model_path(ds: Dataset) -> Path:
    return ds.results / "instance_model" / "model.pt"


@functools.lru_cache(maxsize=1)
def load_pretrained(weights: str | None):
    from pipeline.core.weights import DEFAULT_ENTRIES, load_state_dict
    from pipeline.segmentation import maskrcnn

    entry = DEFAULT_ENTRIES["maskrcnn_resnet50_fpn_coco"]
    return maskrcnn.coco_model(load_state_dict(entry, user_path=weights), weights or entry.file)


@functools.lru_cache(maxsize=1)
def load_trained(path: Path):
    from pipeline.segmentation import maskrcnn, require_trained

    return maskrcnn.load(require_trained(path, "Mask R-CNN", "train_instances", "instances mode"))


def detect_sequence(ds: Dataset, seq: Sequence, out_dir: Path, model, to_detections) -> dict:
    from pipeline.core.devices import pick_device
    from pipeline.segmentation import maskrcnn

    table, _ = given.sequence_manifest(ds, seq)
    settings = ds.settings.instances
    device = pick_device(settings.device)
    model = model.to(device).eval()
    counts = []
    for start in range(0, len(table), settings.batch):
        rows = table.iloc[start:start + settings.batch]
        images = [torch.from_numpy(read_rgb(ds.results / path)).permute(2, 0, 1).float().div(255).to(device)
                  for path in rows.path]
        with torch.inference_mode():
            outputs = model(images)
        for row, output in zip(rows.itertuples(), outputs):
            label_path = ds.results / "labels" / seq.name / f"{row.index:06d}.png"
            if not label_path.is_file():
                raise InputError(label_path, "missing: the instances stage intersects masks with the labels "
                                             "stage's maps; run the labels stage first")
            labels = read_map(label_path, np.uint8)
            detections = to_detections({k: v.cpu() for k, v in output.items()}, settings.score_threshold)
            instance_map, count = maskrcnn.compose_instance_map(labels, detections)
            write_map(out_dir / f"{row.index:06d}.png", instance_map)
            counts.append(count)
    return {"frames": len(table), "instances_per_frame": round(float(np.mean(counts)), 2), "device": str(device)}


def pretrained(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    from pipeline.segmentation import maskrcnn

    return detect_sequence(ds, seq, out_dir, load_pretrained(ds.settings.instances.weights),
                           maskrcnn.coco_detections_to_cityscapes)


def trained(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    from pipeline.segmentation import maskrcnn

    return detect_sequence(ds, seq, out_dir, load_trained(instance_model_path(ds)), maskrcnn.trained_detections)


def model_inputs(ds: Dataset, mode: str) -> dict:
    """Beyond the settings: the detector checkpoint's hash and the labels the masks were cut with."""
    from pipeline.core.weights import DEFAULT_ENTRIES, sha256_of

    if mode == "given":
        return {}
    path = instance_model_path(ds)
    detector = (DEFAULT_ENTRIES["maskrcnn_resnet50_fpn_coco"].sha256 if mode == "pretrained"
                else sha256_of(path) if path.is_file() else None)
    return {"detector": detector, "labels": ds.cfg["labels"]}


def no_instances(ds: Dataset, seq, out_dir: Path) -> dict:
    raise InputError(f"{ds.config_key}.instances.mode", "is none: the dataset has no instance maps, so this stage "
                                                        "has nothing to make (the cache packs the labels alone)")


MODES = {"given": lambda ds, seq, out: given.copy_maps(ds, seq, out, "instance"),
         "pretrained": pretrained, "train": trained, "none": no_instances}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("instances", __doc__, MODES, argv, inputs_of=model_inputs)


if __name__ == "__main__":
    main()
