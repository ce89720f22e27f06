"""Training and inference speed of the vid2vid model: frames/s, peak memory, achieved TFLOP/s.

    python benchmarks/train_speed.py                 # on the GPU: the table of the speed issue, and its JSON
    python benchmarks/train_speed.py --quick         # tiny sizes on the CPU: checks the script runs
    python benchmarks/train_speed.py --quick --profile --cases "512x256 bf16+cl b4"   # where a step's time goes

Model: the official 512x256 recipe (ngf 128, 3 downsamplings, 9 residual blocks, foreground
branch, 2-scale D_I, 2 temporal scales of 2-scale D_V with K = 3, VGG loss), on synthetic clips of
9 frames (2 real first frames, 7 generated = 7 training frames per clip, so that both temporal
scales of D_V run: stride 3 needs 7) held on the device, so
the numbers are the model's, not the loader's. 1024x512 adds one local enhancer; its batch-1 case
with gradient checkpointing (``train.grad_checkpoint``) is the "fits in 24 GB" one. FLOPs are
counted once per case with torch.utils.flop_counter (forward + backward of G, D_I, D_V, VGG;
inference: G's forward alone); the VGG has random weights here (timing only). '% peak' is against
--peak TFLOP/s (dense bf16: ~790 on an H100/H200 SXM). Inference: the generator alone, no grad,
frame by frame with its own history.

Synthesis memory: the real synthesis path (model/synthesis.py's ``Synthesizer.frames``, streaming)
at 2048x1024 (two local enhancers) over ``--synth-frames`` frames (default 1200, the paper's long
videos), peak memory after the first 10 frames and after the last: bounded memory keeps them equal.

On a GPU the figures are also written to ``benchmarks/results/gpu-<card>-<date>.json`` (``--json``
names another file; ``--json`` with ``--quick`` writes the CPU check's).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _table import print_table  # noqa: E402 (sibling module of the script)

from model import options as options_mod
from model.losses import VGGLoss
from model.synthesis import Synthesizer
from model.trainer import Trainer

N_FRAMES = 9
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Case:
    label: str
    width: int
    height: int
    n_local: int
    batch: int
    precision: str
    channels_last: bool
    compile: bool = False
    grad_checkpoint: bool = False


CASES = [
    Case("512x256 fp32", 512, 256, 0, 1, "fp32", False),
    Case("512x256 bf16+cl", 512, 256, 0, 1, "bf16", True),
    Case("512x256 bf16+cl b4", 512, 256, 0, 4, "bf16", True),
    Case("512x256 bf16+cl+compile b4", 512, 256, 0, 4, "bf16", True, compile=True),
    Case("1024x512 bf16+cl", 1024, 512, 1, 1, "bf16", True),
    Case("1024x512 bf16+cl b4", 1024, 512, 1, 4, "bf16", True),
    Case("1024x512 bf16+cl b1 grad-ckpt", 1024, 512, 1, 1, "bf16", True, grad_checkpoint=True),
]


def make_trainer(case: Case, device, quick: bool, num_scales: int = 2) -> Trainer:
    ngf = (8 if quick else 128) // 2**case.n_local  # the global generator keeps ngf * 2**n_local = 128
    opts = options_mod.from_dict({
        "model": {"ngf": ngf, "n_downsample": 2 if quick else 3,
                  "n_blocks": 2 if quick else 9, "n_local": case.n_local},
        "discriminator": {"ndf": 8 if quick else 64, "num_scales": num_scales, "temporal_scales": 2, "k_frames": 3},
        "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": 1000, "n_frames": N_FRAMES, "scales": case.n_local}],
        "train": {"batch_size": case.batch, "precision": case.precision, "channels_last": case.channels_last,
                  "compile": case.compile, "grad_checkpoint": case.grad_checkpoint, "first_frame": "real"},
    })
    trainer = Trainer(opts, device)
    # random weights: the cost of the loss, not its value
    trainer.objective.vgg = None if quick else VGGLoss(None).to(device)
    return trainer


def synthetic_batch(batch, width, height, device):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 34, (batch, N_FRAMES, height, width), generator=g)
    return {
        "frames": torch.randint(0, 256, (batch, N_FRAMES, 3, height, width), generator=g, dtype=torch.uint8),
        "labels": labels.to(torch.uint8),
        "instances": labels.to(torch.int32),
        "flow_backward": torch.randn(batch, N_FRAMES - 1, 2, height, width, generator=g),
        "confidence_backward": torch.rand(batch, N_FRAMES - 1, 1, height, width, generator=g),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def count_flops(function) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def time_training(trainer, batch, device, warmup, repeats) -> float:
    for _ in range(warmup):
        trainer.train_step(batch, 0)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        trainer.train_step(batch, 0)
    sync(device)
    return (time.perf_counter() - start) / repeats


@torch.no_grad()
def inference(trainer, batch, device, repeats, flops: bool) -> tuple[float, float | None]:
    """(generated frames/s, FLOPs per generated frame or None)."""
    inputs = trainer.to_inputs({k: v.to(device) for k, v in batch.items()})
    frames = inputs["frames"].shape[0] * (N_FRAMES - 2)
    scales = trainer.opts.schedule[0].scales
    trainer.generator.eval()
    with trainer.autocast():
        per_frame = count_flops(lambda: trainer.generate(inputs, scales)) / frames if flops else None
        trainer.generate(inputs, scales)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            trainer.generate(inputs, scales)
        sync(device)
    trainer.generator.train()
    return repeats * frames / (time.perf_counter() - start), per_frame


def profile_step(trainer, batch, device, steps: int = 3) -> None:
    """Print where a training step's time goes: the step's named phases and the costliest operators."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    time_training(trainer, batch, device, warmup=2, repeats=1)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step(batch, 0)
        sync(device)
    events = prof.key_averages()
    kind = "device" if device.type == "cuda" else "cpu"

    def total(e):
        return getattr(e, f"{kind}_time_total", 0.0)

    def self_time(e):
        return getattr(e, f"self_{kind}_time_total", 0.0)

    phases = {e.key: total(e) for e in events if e.key.startswith(("step.", "losses."))}
    step_us = sum(v for k, v in phases.items() if k.startswith("step."))
    rows = [(k, f"{v / steps / 1e3:.1f}", f"{100 * v / step_us:.0f}%") for k, v in phases.items()]
    print_table(f"one training step's phases ({kind} time, mean of {steps} steps; losses.* are inside step.losses)",
                ["phase", "ms per step", "% of step"], sorted(rows, key=lambda r: r[0]))
    ops = sorted((e for e in events if not e.key.startswith(("step.", "losses.", "ProfilerStep"))),
                 key=self_time, reverse=True)[:15]
    print_table(f"the 15 costliest operators (self {kind} time)", ["operator", "ms per step", "% of step", "calls"],
                [(e.key, f"{self_time(e) / steps / 1e3:.1f}", f"{100 * self_time(e) / step_us:.0f}%",
                  str(e.count // steps)) for e in ops])


def synthesis_memory(device, quick: bool, n_frames: int) -> tuple[float, float, float]:
    """(peak GiB after 10 frames, after all, frames/s) of the streaming synthesis at 2048x1024."""
    case = Case("2048x1024 synthesis", 2048, 1024, 2, 1, "bf16", True)
    width, height = (case.width // 8, case.height // 8) if quick else (case.width, case.height)
    trainer = make_trainer(case, device, quick)
    synthesizer = Synthesizer(trainer.state_dict(), device, weights="raw")
    del trainer
    gc.collect()
    rng = np.random.default_rng(0)
    label_frames = [rng.integers(0, 34, (height, width), dtype=np.uint8) for _ in range(4)]
    real = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)]
    labels = (label_frames[t % 4] for t in range(n_frames))
    instances = (frame.astype(np.int32) for frame in (label_frames[t % 4] for t in range(n_frames)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    early, start = float("nan"), time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        for t, _ in enumerate(synthesizer.frames(labels, instances, real, first_frame="real")):
            if t == 9:
                early = peak_gib(device)
    sync(device)
    return early, peak_gib(device), n_frames / (time.perf_counter() - start)


def optimised_step_difference(device) -> float:
    """The largest relative difference (gradient norm) between a plain fp32 step and one with
    channels_last and gradient checkpointing, over every weight of G, D_I and D_V (small sizes):
    the speed options must not change what is trained (tests/test_model.py checks it on the CPU)."""
    grads = []
    for speed in ({}, {"channels_last": True, "grad_checkpoint": True}):
        case = Case("check", 128, 64, 0, 1, "fp32", speed.get("channels_last", False),
                    grad_checkpoint=speed.get("grad_checkpoint", False))
        trainer = make_trainer(case, device, quick=True)
        trainer.train_step(synthetic_batch(1, case.width, case.height, device), 0)
        grads.append({n: p.grad.float() for m in (trainer.generator, trainer.image_d, trainer.video_ds)
                      for n, p in m.named_parameters() if p.grad is not None})
    plain, fast = grads
    return max(float((fast[n] - g).norm() / g.norm().clamp_min(1e-12)) for n, g in plain.items())


def card_slug(card: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes (CPU check)")
    parser.add_argument("--peak", type=float, default=790.0, help="the card's dense bf16 TFLOP/s")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cases", nargs="*", help="labels of the cases to run (default: all)")
    parser.add_argument("--profile", action="store_true", help="profile one step of each case run, not time it")
    parser.add_argument("--synth-frames", type=int, default=1200, help="frames of the 2048x1024 synthesis (0: skip)")
    parser.add_argument("--json", type=Path, help="write the figures here (default on a GPU: benchmarks/results/)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    torch.backends.cudnn.benchmark = True
    rows, results, flops_of_shape = [], {}, {}
    for case in CASES:
        if args.cases and case.label not in args.cases:
            continue
        width, height = (case.width // 8, case.height // 8) if args.quick else (case.width, case.height)
        if args.quick and case.compile:
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer = make_trainer(case, device, args.quick)
        batch = synthetic_batch(case.batch, width, height, device)
        if args.profile:
            profile_step(trainer, batch, device)
            continue
        try:
            shape = (width, height, case.n_local, case.batch)
            flops = None if case.compile else count_flops(functools.partial(trainer.train_step, batch, 0))
            flops = flops_of_shape.setdefault(shape, flops)  # compiled: the eager case's FLOPs of that shape
            step = time_training(trainer, batch, device, warmup=2 if args.quick else 5,
                                 repeats=2 if args.quick else args.repeats)
            fps_infer, infer_flops = inference(trainer, batch, device, 2 if args.quick else args.repeats,
                                               flops=not case.compile)
        except torch.OutOfMemoryError:
            rows.append((case.label, "OOM", "", "", "", "", "", ""))
            continue
        frames = case.batch * (N_FRAMES - 2)
        tflops = flops / step / 1e12 if flops else float("nan")
        infer_pct = 100 * infer_flops * fps_infer / 1e12 / args.peak if infer_flops else float("nan")
        results[case.label] = {"train_frames_per_s": frames / step, "train_pct_peak": 100 * tflops / args.peak,
                               "infer_fps": fps_infer, "infer_pct_peak": infer_pct, "peak_gib": peak_gib(device),
                               "tflop_per_train_frame": flops / frames / 1e12 if flops else None}
        rows.append((f"{case.label}" + (" (quick)" if args.quick else ""), f"{frames / step:.1f}",
                     f"{flops / frames / 1e12:.2f}" if flops else "?", f"{tflops:.1f}",
                     f"{100 * tflops / args.peak:.0f}%", f"{fps_infer:.0f}", f"{infer_pct:.0f}%",
                     f"{peak_gib(device):.1f}"))
        del trainer, batch
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.profile:
        return
    print_table(f"vid2vid training speed on {card} ({N_FRAMES}-frame clips, {N_FRAMES - 2} generated per clip)",
                ["case", "train frames/s", "TFLOP per train frame", "achieved TFLOP/s", "% of peak",
                 "inference frames/s", "inference % of peak", "peak GiB"], rows)
    synth = None
    if args.synth_frames and not args.cases:
        synth = synthesis_memory(device, args.quick, args.synth_frames)
        print_table(f"streaming synthesis at {'256x128 (quick)' if args.quick else '2048x1024'}, two local enhancers",
                    ["frames", "peak GiB after 10 frames", "peak GiB after all", "frames/s"],
                    [(str(args.synth_frames), f"{synth[0]:.2f}", f"{synth[1]:.2f}", f"{synth[2]:.2f}")])
    difference = optimised_step_difference(device)
    print(f"\nchannels_last + gradient checkpointing against the plain fp32 step on {card}: largest relative "
          f"gradient difference {difference:.2e} ({'same' if difference < 1e-3 else 'DIFFERENT'})")
    path = args.json or (None if device.type != "cuda" else
                         RESULTS / f"gpu-{card_slug(card)}-{datetime.date.today().isoformat()}.json")
    if path is not None:
        write_results(path, card, args, results, synth, difference)


def _finite(value):
    """NaN (no CUDA memory counter on the CPU) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def write_results(path: Path, card: str, args, results: dict, synth, difference: float) -> None:
    """The speed issue's keys (the best 512x256 case for speed), and every case's figures."""
    at_512 = {k: v for k, v in results.items() if k.startswith("512x256")}
    best_train = max(at_512.values(), key=lambda r: r["train_frames_per_s"], default={})
    best_infer = max(at_512.values(), key=lambda r: r["infer_fps"], default={})
    b1 = results.get("1024x512 bf16+cl b1 grad-ckpt", {})
    summary = {
        "card": card, "date": datetime.date.today().isoformat(), "torch": torch.__version__, "quick": args.quick,
        "peak_tflops": args.peak,
        "train_512_pct_peak": best_train.get("train_pct_peak"),
        "train_512_frames_per_s": best_train.get("train_frames_per_s"),
        "infer_512_pct_peak": best_infer.get("infer_pct_peak"),
        "infer_512_fps": best_infer.get("infer_fps"),
        "train_1024_b1_peak_gib": b1.get("peak_gib"),
        "synth_2048_peak_gib": synth[1] if synth else None,
        "synth_2048_peak_gib_after_10_frames": synth[0] if synth else None,
        "synth_2048_frames": args.synth_frames if synth else None,
        "optimised_step_max_grad_rel_diff": difference,
        "cases": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(summary), indent=1, allow_nan=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
