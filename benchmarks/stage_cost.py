"""What full Cityscapes costs: each stage's cost per frame at 512x256, 1024x512 and 2048x1024, the
cache's disk per frame, and the projection for the full dataset and the paper's schedule.

    python benchmarks/stage_cost.py [--sizes 512x256 1024x512 2048x1024] [--json FILE]

Measured here (CPU, every core torch is given; on a GPU the annotation networks run there too):
- the annotation networks that config/cityscapes.yaml runs, with untrained weights (speed does not
  depend on the values): DeepLabV3 R101-D8 (labels, pretrained mode), Mask R-CNN R50-FPN as the COCO
  model runs (torchvision's 800/1333 resize: the same cost at every frame size), FlowNet2 (ptlflow;
  forward + backward flow and the check), and DIS medium (OpenCV, no weights);
- the frames stage and the cache pack on rendered synthcity frames at each size (labels, instances
  and flow 'given'), and the disk per frame of every stage's output and of the cache;
- the generator's synthesis (no grad, fp32) per frame;
- one training step of the official 512x256 recipe (ngf 128, 9 blocks, 2-scale D_I, 2 temporal
  scales of D_V, VGG loss) on a 5-frame clip, seconds per generated frame.
Each measurement runs in its own process with at most 20 GiB: one that runs out (FlowNet2 beyond
512x256 on the CPU: ptlflow's correlation without its CUDA extension) is NaN in the table.
Counted (torch.utils.flop_counter): the FLOPs of a training step per generated frame of the three
recipes (512: the global generator; 1024: one local enhancer, 3-scale D; 2048: two, 4-scale D),
counted at a quarter of the size per side and multiplied by 16 (convolutions scale with the pixels;
2048x1024 at an eighth, times 64, since a quarter needs more than 20 GiB here; the 512 recipe
counted both ways says how close that is).

Projected from those: the full dataset (2,975 + 500 snippets of 30 frames, the 3 demo videos) and the
official street schedule (scripts/street/train_{512,1024,2048}.sh: 20 + 20 + 10 epochs of 2,975
clips whose length doubles every niter_step epochs up to 30 frames): annotation core-hours, training
FLOPs and the GPU-hours they mean at a stated sustained rate, disk, wall time on N nodes of 8 GPUs.
docs/scale.md has the table and says which figure is which.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from _data import build_cache
from _table import print_table
from annotation_speed import flow_rate, maskrcnn_rate, segmenter_rate, dis_rate
from full_size_dag import DEMO_VIDEOS, SNIPPETS
from torchvision.models.detection import maskrcnn_resnet50_fpn
from train_speed import Case, count_flops, make_trainer, synthetic_batch, time_training

from pipeline.flow import models as flow_models
from pipeline.segmentation.mmseg_deeplabv3 import DeepLabV3

FRAMES = sum(n * 30 for n, _ in SNIPPETS.values()) + sum(DEMO_VIDEOS)
TRAIN_SEQUENCES = SNIPPETS["train"][0]
# the official street recipe per size: (local enhancers, D scales, epochs, first n_frames_total, niter_step)
RECIPES = {512: (0, 2, 20, 6, 5), 1024: (1, 3, 20, 4, 2), 2048: (2, 4, 10, 4, 1)}
PAPER_V100_DAYS = 10 * 8  # "about 10 days on 8 V100s" for the 2048x1024 model (RECIPE.md)


def generated_frames_per_clip(epochs: int, first: int, step: int, length: int = 30, past: int = 2) -> int:
    """Frames generated (trained on) per clip over a schedule: the clip length doubles every
    ``step`` epochs from ``first`` up to the sequence's length; the first ``past`` frames are given."""
    return sum(min(length, first * 2 ** (epoch // step)) - past for epoch in range(epochs))


MEMORY_LIMIT_GIB = 20  # each measurement runs in its own process, its data capped below the machine's 24


def _limit_memory() -> None:
    # the data segment and anonymous mappings (what tensors take), not the address space: torch's
    # libraries alone map ~10 GiB of it
    limit = MEMORY_LIMIT_GIB * 2**30
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def isolated(function, *args):
    """``function(*args)`` in a fresh process with at most MEMORY_LIMIT_GIB of data: NaN
    (and the reason printed) where it runs out of memory or fails, rather than the whole benchmark
    killed."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_limit_memory) as pool:
        try:
            return pool.submit(function, *args).result()
        except Exception as err:  # noqa: BLE001 - out of memory above all: say so in the table
            print(f"{function.__name__}{args}: failed ({type(err).__name__}: {str(err)[:120]})", flush=True)
            return math.nan


def _frames(width: int, height: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height + 16, width + 16, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[i % 16:i % 16 + height, i % 16:i % 16 + width]) for i in range(max(n, 2))]


def network_seconds(name: str, width: int, height: int, n: int) -> float:
    """Seconds per frame (flow: per frame pair) of one annotation network at width x height."""
    frames, cpu = _frames(width, height, n), torch.device("cpu")
    if name.startswith("labels"):
        return 1 / segmenter_rate(DeepLabV3(101), frames, cpu, batch=1)
    if name.startswith("instances"):
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
        return 1 / maskrcnn_rate(model, frames, cpu, batch=1)
    if "FlowNet2" in name:
        return 1 / flow_rate(flow_models.load("ptlflow:flownet2", "random"), frames, cpu, batch=1)
    return 1 / dis_rate(frames, "medium")


NETWORKS = ["labels: DeepLabV3 R101-D8", "instances: Mask R-CNN R50-FPN (COCO)", "flow: FlowNet2 (ptlflow)",
            "flow: DIS medium (OpenCV)"]


def disk_per_frame(folder: Path, frames: int) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / frames


def stage_files(width: int, height: int, length: int) -> tuple[dict[str, float], dict[str, float]]:
    """(seconds per frame, bytes per frame) of the frames stage, the 'given' stages and the cache pack,
    on one rendered synthcity sequence."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        ds, shard = build_cache(Path(scratch), width, height, sequences=1, length=length, seconds=seconds)
        disk = {stage: disk_per_frame(ds.results / stage, length) for stage in ("frames", "labels", "instances", "flow")}
        disk["cache"] = shard.stat().st_size / length
    return {stage: s / length for stage, s in seconds.items()}, disk


def recipe_case(size: int, width: int, height: int) -> tuple[Case, int]:
    n_local, num_d, *_ = RECIPES[size]
    return Case(f"{size} recipe", width, height, n_local, 1, "fp32", False), num_d


def training_flops(size: int, divisor: int) -> tuple[float, float]:
    """(training FLOPs, synthesis FLOPs) per generated frame of the size's recipe, counted at
    1/``divisor`` of the size per side, times ``divisor`` squared."""
    device = torch.device("cpu")
    case, num_d = recipe_case(size, size // divisor, size // (2 * divisor))
    trainer = make_trainer(case, device, quick=False, num_scales=num_d)
    batch = synthetic_batch(1, case.width, case.height, device)
    generated = batch["frames"].shape[1] - 2
    train = count_flops(lambda: trainer.train_step(batch, 0)) / generated
    inputs = trainer.to_inputs(batch)
    with torch.no_grad():
        synth = count_flops(lambda: trainer.generate(inputs, case.n_local)) / generated
    return divisor**2 * train, divisor**2 * synth


def synthesis_seconds(size: int, frames: int = 4) -> float:
    """Seconds per frame of the size's generator at full size (no grad, fp32; 2 given frames)."""
    device = torch.device("cpu")
    case, num_d = recipe_case(size, size, size // 2)
    trainer = make_trainer(case, device, quick=False, num_scales=num_d)
    batch = synthetic_batch(1, case.width, case.height, device)
    inputs = trainer.to_inputs({k: v[:, :frames] if v.dim() > 2 else v for k, v in batch.items()})
    trainer.generator.eval()
    with torch.no_grad():
        start = time.perf_counter()
        trainer.generate(inputs, case.n_local)
        return (time.perf_counter() - start) / (frames - 2)


def training_seconds(frames: int = 5) -> float:
    """Seconds per generated frame of one training step of the 512x256 recipe at full size, on a
    clip of ``frames`` (the 9-frame clip of the FLOP count needs more than 20 GiB on the CPU)."""
    device = torch.device("cpu")
    case, num_d = recipe_case(512, 512, 256)
    trainer = make_trainer(case, device, quick=False, num_scales=num_d)
    batch = {k: v[:, :frames - 1 if k.endswith("_backward") else frames]  # T frames, T - 1 flows
             for k, v in synthetic_batch(1, case.width, case.height, device).items()}
    return time_training(trainer, batch, device, warmup=0, repeats=1) / (frames - 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["512x256", "1024x512", "2048x1024"])
    parser.add_argument("--frames", type=int, default=2, help="frames per annotation network measurement")
    parser.add_argument("--sequence", type=int, default=6, help="frames of the rendered sequence per size")
    parser.add_argument("--tflops", type=float, default=100.0,
                        help="sustained TFLOP/s per GPU assumed for the GPU-hour projection")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4], help="nodes of 8 GPUs to project for")
    parser.add_argument("--no-train", action="store_true", help="skip the measured 512x256 training step")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--from-json", type=Path, help="measure nothing: the tables and projection of a --json file")
    args = parser.parse_args()
    if args.from_json:
        report(json.loads(args.from_json.read_text()), args)
        return
    where = f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    figures: dict = {"device": where, "threads": torch.get_num_threads(), "frames_full_dataset": FRAMES, "sizes": {}}
    for width, height in sizes:
        print(f"measuring {width}x{height} ...", flush=True)
        stage_s, disk = stage_files(width, height, args.sequence)
        networks = {name: isolated(network_seconds, name, width, height, args.frames) for name in NETWORKS}
        # counted at a quarter of the size per side; 2048x1024 at an eighth (a quarter needs more than 20 GiB)
        flops = isolated(training_flops, width, 8 if width >= 2048 else 4)
        figures["sizes"][f"{width}x{height}"] = {
            "stage_seconds_per_frame": stage_s, "network_seconds_per_frame": networks, "disk_bytes_per_frame": disk,
            "train_flops_per_frame": flops[0] if isinstance(flops, tuple) else math.nan,
            "synthesis_flops_per_frame": flops[1] if isinstance(flops, tuple) else math.nan,
            "synthesis_seconds_per_frame": isolated(synthesis_seconds, width)}
        print(json.dumps(figures["sizes"][f"{width}x{height}"], indent=1), flush=True)
    if not args.no_train:
        figures["train_seconds_per_frame_512"] = isolated(training_seconds)
        # how far counting at a smaller size is from the pixel count: the 512 recipe at 1/4 and 1/8
        quarter, eighth = isolated(training_flops, 512, 4), isolated(training_flops, 512, 8)
        if isinstance(quarter, tuple) and isinstance(eighth, tuple):
            figures["flops_eighth_over_quarter_512"] = eighth[0] / quarter[0]
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def report(figures: dict, args) -> None:
    """Print the cost table and the projection of ``figures`` (what main measures)."""
    where = figures["device"]
    keys = list(figures["sizes"])
    sizes = [tuple(int(v) for v in k.split("x")) for k in keys]
    per = figures["sizes"]
    rows = [[f"{stage} (s/frame)"] + [f"{per[k]['stage_seconds_per_frame'][stage]:.3f}" for k in keys]
            for stage in ("frames", "cache")]
    rows += [[f"{name} (s/frame)"] + [f"{per[k]['network_seconds_per_frame'][name]:.2f}" for k in keys]
             for name in per[keys[0]]["network_seconds_per_frame"]]
    rows += [["synthesis, the size's generator (s/frame)"] + [f"{per[k]['synthesis_seconds_per_frame']:.2f}" for k in keys]]
    rows += [[f"disk: {stage} (KiB/frame)"] + [f"{per[k]['disk_bytes_per_frame'][stage] / 1024:.0f}" for k in keys]
             for stage in ("frames", "labels", "instances", "flow", "cache")]
    rows += [["training, the size's recipe (TFLOP/generated frame)"]
             + [f"{per[k]['train_flops_per_frame'] / 1e12:.2f}" for k in keys],
             ["synthesis, the size's recipe (TFLOP/frame)"]
             + [f"{per[k]['synthesis_flops_per_frame'] / 1e12:.3f}" for k in keys]]
    print_table(f"Cost per frame ({where})", ["stage"] + keys, rows)
    if "train_seconds_per_frame_512" in figures:
        seconds = figures["train_seconds_per_frame_512"]
        rate = per[keys[0]]["train_flops_per_frame"] / seconds / 1e12 if keys[0] == "512x256" else float("nan")
        print(f"\ntraining the 512x256 recipe here: {seconds:.1f} s per generated frame ({rate:.2f} TFLOP/s; "
              "a 5-frame clip)")
    if "flops_eighth_over_quarter_512" in figures:
        print(f"training FLOPs of the 512 recipe counted at 1/8 of the size per side over those at 1/4: "
              f"{figures['flops_eighth_over_quarter_512']:.3f}")

    # the projection: full Cityscapes through the official street schedule
    rows, total_gpu_hours, total_flops = [], 0.0, 0.0
    for (width, height), key in zip(sizes, keys):
        if width not in RECIPES:
            continue
        _, _, epochs, first, step = RECIPES[width]
        trained = TRAIN_SEQUENCES * generated_frames_per_clip(epochs, first, step)
        flops = trained * per[key]["train_flops_per_frame"]
        gpu_hours = flops / (args.tflops * 1e12) / 3600
        total_gpu_hours += gpu_hours
        total_flops += flops
        nets = per[key]["network_seconds_per_frame"]
        core_hours = {flow: (nets[NETWORKS[0]] + nets[NETWORKS[1]] + nets[flow]) * FRAMES * figures.get("threads", 2) / 3600
                      for flow in NETWORKS[2:]}
        disk = sum(per[key]["disk_bytes_per_frame"].values()) * FRAMES
        rows.append([key, f"{epochs}", f"{trained:,}", f"{flops / 1e18:.1f}", f"{gpu_hours:,.0f}",
                     f"{core_hours[NETWORKS[2]]:,.0f}", f"{core_hours[NETWORKS[3]]:,.0f}", f"{disk / 2**30:,.0f}"])
    print_table(f"Projection: full Cityscapes ({FRAMES:,} frames), the official schedule, "
                f"GPUs at {args.tflops:.0f} TFLOP/s sustained",
                ["size", "epochs", "frames trained", "EFLOP", "GPU-hours", "annotation core-h, FlowNet2",
                 "annotation core-h, DIS", "disk GiB (all stages)"], rows)
    print("\nwall time of the training schedule on N nodes of 8 GPUs (linear scaling assumed): "
          + ", ".join(f"{n}: {total_gpu_hours / (8 * n) / 24:.1f} days" for n in args.nodes))
    implied = total_flops / (PAPER_V100_DAYS * 86400) / 1e12
    print(f"the paper's ~10 days on 8 V100s for these {total_flops / 1e18:.0f} EFLOP mean {implied:.1f} TFLOP/s "
          "sustained per V100 (fp32 peak 15.7)")
    figures["projection"] = {"tflops": args.tflops, "gpu_hours": total_gpu_hours, "eflop": total_flops / 1e18,
                             "paper_implied_tflops_per_v100": implied}


if __name__ == "__main__":
    main()
