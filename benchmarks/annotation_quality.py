"""The trained annotators against synthcity's ground truth: the DeepLabV3 segmenter (labels mode
'train') and the Mask R-CNN (instances mode 'train'), trained on the annotated frames of the train
split and measured on the held-out annotated frames of the val split.

    python benchmarks/annotation_quality.py [--train 24 --val 4 --seg-minutes 10 --inst-minutes 10]
        [--no-seg-decoder] [--seg-batch 8 --seg-lr 0.001] [--skip-instances]

synthcity at 256x128, 30 frames per sequence, every 3rd frame annotated (plus frame 19). mIoU is
over the classes present in the held-out truth (19 Cityscapes trainIds). Instances: same-class
matches by mask IoU (precision / recall at 0.5, mean IoU of the matches), masks cut by the true
labels. Prints two tables and writes benchmarks/results/annotation_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
from _table import print_table

from pipeline import config as config_mod
from pipeline import frames, train_instances, train_segmenter
from pipeline.datasets import synthcity


def build(root: Path, n_train: int, n_val: int, width: int, height: int, seg: dict, inst: dict):
    synth = {"seed": 1, "size": [width, height], "frames": 30, "train": n_train, "val": n_val,
             "annotated_frame": 19, "annotate_every": 3}
    cfg = {"adapter": "cityscapes", "generate": {"synthcity": synth}, "frames": {"size": [width, height]},
           "labels": {"mode": "train", "train": seg}, "instances": {"mode": "train", "train": inst}}
    config = config_mod.validate({"results": str(root), "datasets": {"bench": cfg}})
    ds = config_mod.dataset(config, "bench")
    for seq in synthcity.sequences(synth):
        synthcity.write_sequence(ds.root, seq, synth)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    return ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=24)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128])
    parser.add_argument("--seg-minutes", type=float, default=10)
    parser.add_argument("--seg-steps", type=int, default=100000)
    parser.add_argument("--seg-backbone", default="mobilenet_v3_large")
    parser.add_argument("--seg-input-scale", type=float, default=1.0)
    parser.add_argument("--seg-decoder", action=argparse.BooleanOptionalAction, default=True,
                        help="DeepLabV3+'s stride-4 decoder (--no-seg-decoder: the paper's plain DeepLabV3)")
    parser.add_argument("--seg-batch", type=int, help="default: the config schema's (8)")
    parser.add_argument("--seg-lr", type=float, help="default: the config schema's (0.001)")
    parser.add_argument("--inst-minutes", type=float, default=10)
    parser.add_argument("--inst-steps", type=int, default=100000)
    parser.add_argument("--skip-instances", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    card = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else f"CPU ({os.cpu_count()} cores)"
    root = args.workdir or Path(tempfile.mkdtemp(prefix="annotation_quality_"))
    ds = build(root, args.train, args.val, *args.size,
               {"steps": args.seg_steps, "minutes": args.seg_minutes, "backbone": args.seg_backbone,
                "input_scale": args.seg_input_scale, "decoder": args.seg_decoder,
                **{k: v for k, v in (("batch", args.seg_batch), ("lr", args.seg_lr)) if v is not None}},
               {"steps": args.inst_steps, "minutes": args.inst_minutes})
    results = {"device": card, "size": args.size}
    seg = train_segmenter.train(ds, ds.results / "segmenter" / "model.pt", args.device)
    results["segmenter"] = seg
    held = seg["held_out"]
    print_table(f"DeepLabV3 ({seg['backbone']}) trained on synthcity's annotated frames, {card}",
                ["input scale", "decoder", "batch", "lr", "train frames", "steps", "minutes", "held-out frames", "mIoU", "pixel acc"],
                [[seg["settings"]["input_scale"], seg["settings"]["decoder"], seg["settings"]["batch"],
                  seg["settings"]["lr"], seg["train_frames"], seg["steps"], f"{seg['seconds'] / 60:.1f}", held["frames"],
                  f"{held['miou']:.3f}", f"{held['pixel_accuracy']:.3f}"]])
    print_table("per-class IoU (held out)", ["class", "IoU"], [[k, f"{v:.3f}"] for k, v in held["iou"].items()])
    if not args.skip_instances:
        inst = train_instances.train(ds, ds.results / "instance_model" / "model.pt", args.device)
        results["instances"] = inst
        held = inst["held_out"]
        print_table(f"Mask R-CNN ({inst['backbone']}-FPN) trained on synthcity's annotated frames, {card}",
                    ["train frames", "steps", "minutes", "true inst.", "predicted", "precision@0.5",
                     "recall@0.5", "matched IoU"],
                    [[inst["train_frames"], inst["steps"], f"{inst['seconds'] / 60:.1f}", held["true_instances"],
                      held["predicted"], f"{held['precision@0.5']:.3f}", f"{held['recall@0.5']:.3f}",
                      f"{held['matched_iou']:.3f}"]])
    out = Path(__file__).parent / "results" / "annotation_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
