"""The trained annotators against synthcity's ground truth: the DeepLabV3 segmenter (labels mode
'train') and the Mask R-CNN (instances mode 'train'), trained on the annotated frames of the train
split and measured on the held-out annotated frames of the val split.

    python benchmarks/annotation_quality.py [--train 96 --val 4 --seg-minutes 10 --inst-minutes 10]
        [--skip-segmenter] [--no-seg-decoder] [--seg-batch 8 --seg-lr 0.002 --seg-aspp-channels 128
         --seg-fine-channels 32]
        [--seg-scales 1 1.5 --seg-flip]
        [--skip-instances]

synthcity at 256x128, 30 frames per sequence, every 3rd frame annotated (plus frame 19). mIoU is
over the classes present in the held-out truth (19 Cityscapes trainIds), inferred at scales 1 and
1.5 with mirrored frames as the demo's labels stage runs (DeepLabV3's multi-scale + flip), the
single-scale mIoU beside. Instances: same-class matches by mask IoU (precision / recall at 0.5,
recall over the true instances of >= 100 pixels, mean IoU of the matches), masks cut by the true
labels. Prints the tables and writes benchmarks/results/annotation_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from _table import print_table

from pipeline.core import config as config_mod
from pipeline.datasets import synthcity
from pipeline.stages import frames, train_instances, train_segmenter

VAL_START = 24  # the held-out sequences: synthcity's 24, 25, ... (seed 1)


def build(root: Path, n_train: int, n_val: int, width: int, height: int, seg: dict, inst: dict,
          inference: dict | None = None, jobs: int = 1):
    """Render synthcity into ``root/source`` and configure it as a Cityscapes-layout dataset. The
    held-out sequences are always synthcity's sequences 24.. (24 + n_val - 1), the val split of the
    24-train-sequence layout the earlier rows used, so ``--train`` changes only the training data:
    the train sequences are the first ``n_train`` others (0..23, then from 24 + n_val on).
    ``inference``: the labels stage's ``scales`` / ``flip``. Sequences already rendered under
    ``root`` (a rerun with the same ``--workdir``) are kept; ``jobs`` render in parallel."""
    synth = synthcity.settings(seed=1, size=[width, height], frames=30, annotated_frame=19, annotate_every=3)
    val = range(VAL_START, VAL_START + n_val)
    train = [i for i in range(n_train + n_val) if i not in val][:n_train]
    todo = [synthcity.SynthSequence(split, f"synth{index:03d}", index)
            for split, indices in (("train", train), ("val", val)) for index in indices]
    # a sequence's frames folder is renamed into place last: there, the sequence is complete
    todo = [seq for seq in todo if not synthcity.sequence_dirs(root / "source", seq)["frames"].is_dir()]
    with ProcessPoolExecutor(max(1, min(jobs, len(todo)))) as pool:
        list(pool.map(synthcity.write_sequence, [root / "source"] * len(todo), todo, [synth] * len(todo)))
    cfg = {"adapter": "cityscapes", "root": str(root / "source"), "frames": {"size": [width, height]},
           "labels": {"mode": "train", "train": seg, **(inference or {})},
           "instances": {"mode": "train", "train": inst}}
    config = config_mod.validate({"results": str(root), "datasets": {"bench": cfg}})
    ds = config_mod.dataset(config, "bench")
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    return ds


def inference_name(inference: dict) -> str:
    return "x".join(f"{s:g}" for s in inference["scales"]) + (" + flip" if inference["flip"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=96)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128])
    parser.add_argument("--seg-minutes", type=float, default=10)
    parser.add_argument("--seg-steps", type=int, default=100000)
    parser.add_argument("--seg-backbone", default="mobilenet_v3_large")
    parser.add_argument("--seg-input-scale", type=float, default=1.0)
    parser.add_argument("--seg-decoder", action=argparse.BooleanOptionalAction, default=True,
                        help="DeepLabV3+'s stride-4 decoder (--no-seg-decoder: the paper's plain DeepLabV3)")
    parser.add_argument("--seg-batch", type=int, help="default: the config schema's (8)")
    parser.add_argument("--seg-lr", type=float, help="default: the config schema's (0.002)")
    parser.add_argument("--seg-aspp-channels", type=int, help="default: the config schema's (128; torchvision: 256)")
    parser.add_argument("--seg-fine-channels", type=int, help="default: the config schema's (32; 0: no stride-2 stage)")
    parser.add_argument("--seg-scales", type=float, nargs="+", default=[1.0, 1.5],
                        help="inference scales, probabilities averaged (labels.scales; the demo's)")
    parser.add_argument("--seg-flip", action=argparse.BooleanOptionalAction, default=True,
                        help="also infer on mirrored frames (labels.flip; the demo's)")
    parser.add_argument("--inst-minutes", type=float, default=10)
    parser.add_argument("--inst-steps", type=int, default=100000)
    parser.add_argument("--skip-instances", action="store_true")
    parser.add_argument("--skip-segmenter", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", type=Path, help="where synthcity is rendered and the models written "
                        "(default: a new temporary folder); sequences already there are reused")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes rendering synthcity")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "annotation_quality.json",
                        help="the JSON written (several runs side by side need one each)")
    args = parser.parse_args()
    card = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else f"CPU ({os.cpu_count()} cores)"
    root = args.workdir or Path(tempfile.mkdtemp(prefix="annotation_quality_"))
    ds = build(root, args.train, args.val, *args.size,
               {"steps": args.seg_steps, "minutes": args.seg_minutes, "backbone": args.seg_backbone,
                "input_scale": args.seg_input_scale, "decoder": args.seg_decoder,
                **{k: v for k, v in (("batch", args.seg_batch), ("lr", args.seg_lr),
                                     ("aspp_channels", args.seg_aspp_channels),
                                     ("fine_channels", args.seg_fine_channels)) if v is not None}},
               {"steps": args.inst_steps, "minutes": args.inst_minutes},
               {"scales": args.seg_scales, "flip": args.seg_flip}, args.jobs)
    results = {"device": card, "size": args.size}
    if not args.skip_segmenter:
        seg = train_segmenter.train(ds, ds.results / "segmenter" / "model.pt", args.device)
        results["segmenter"] = seg
        held = seg["held_out"]
        print_table(f"DeepLabV3 ({seg['backbone']}) trained on synthcity's annotated frames, {card}",
                    ["input scale", "decoder", "ASPP / decoder / stride-2 width", "batch", "lr", "train frames",
                     "steps", "minutes",
                     "held-out frames", "inference", "mIoU", "pixel acc", "mIoU single scale"],
                    [[seg["settings"]["input_scale"], seg["settings"]["decoder"],
                      f"{seg['settings']['aspp_channels']} / {seg['settings']['decoder_channels']} / "
                      f"{seg['settings']['fine_channels']}", seg["settings"]["batch"],
                      seg["settings"]["lr"], seg["train_frames"], seg["steps"], f"{seg['seconds'] / 60:.1f}", held["frames"],
                      inference_name(held["inference"]), f"{held['miou']:.3f}", f"{held['pixel_accuracy']:.3f}",
                      f"{held.get('single_scale', held)['miou']:.3f}"]])
        mistaken = held["mistaken_for"]
        print_table("per-class IoU (held out)", ["class", "IoU", "most often mistaken for (share of its pixels)"],
                    [[k, f"{v:.3f}", f"{mistaken[k][0]} ({mistaken[k][1]:.2f})" if k in mistaken else ""]
                     for k, v in held["iou"].items()])
    if not args.skip_instances:
        inst = train_instances.train(ds, ds.results / "instance_model" / "model.pt", args.device)
        results["instances"] = inst
        held = inst["held_out"]
        print_table(f"Mask R-CNN ({inst['backbone']}-FPN) trained on synthcity's annotated frames, {card}",
                    ["train frames", "steps", "minutes", "true inst.", "predicted", "precision@0.5",
                     "recall@0.5", "inst. >= 100 px", "their recall@0.5", "matched IoU"],
                    [[inst["train_frames"], inst["steps"], f"{inst['seconds'] / 60:.1f}", held["true_instances"],
                      held["predicted"], f"{held['precision@0.5']:.3f}", f"{held['recall@0.5']:.3f}",
                      held["true_large_instances"], f"{held['recall@0.5 (>= 100 px)']:.3f}",
                      f"{held['matched_iou']:.3f}"]])
    out = args.results
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file() and (args.skip_segmenter or args.skip_instances):  # keep the other part's last results
        results = {**json.loads(out.read_text()), **results}
    out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
