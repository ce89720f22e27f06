"""Training and inference speed of the vid2vid model: frames/s, peak memory, achieved TFLOP/s.

    python benchmarks/train_speed.py                 # on the GPU: the table of the model issue
    python benchmarks/train_speed.py --quick         # tiny sizes on the CPU: checks the script runs

Model: the official 512x256 recipe (ngf 128, 3 downsamplings, 9 residual blocks, foreground
branch, 2-scale D_I, 2 temporal scales of 2-scale D_V with K = 3, VGG loss), on synthetic clips of
9 frames (2 real first frames, 7 generated = 7 training frames per clip, so that both temporal
scales of D_V run: stride 3 needs 7) held on the device, so
the numbers are the model's, not the loader's. 1024x512 adds one local enhancer. FLOPs are counted
once per case with torch.utils.flop_counter (forward + backward of G, D_I, D_V, VGG); the VGG has
random weights here (timing only). '% peak' is against --peak TFLOP/s (dense bf16: ~790 on an
H100/H200 SXM). Inference: the generator alone, no grad, frame by frame with its own history.
"""

from __future__ import annotations

import argparse
import gc
import time

import torch
from _table import print_table  # noqa: E402 (sibling module of the script)

from model import options as options_mod
from model.losses import VGGLoss
from model.trainer import Trainer

CASES = [  # (label, width, height, n_local, batch, precision, channels_last, compile)
    ("512x256 fp32", 512, 256, 0, 1, "fp32", False, False),
    ("512x256 bf16+cl", 512, 256, 0, 1, "bf16", True, False),
    ("512x256 bf16+cl b4", 512, 256, 0, 4, "bf16", True, False),
    ("512x256 bf16+cl+compile b4", 512, 256, 0, 4, "bf16", True, True),
    ("1024x512 bf16+cl", 1024, 512, 1, 1, "bf16", True, False),
    ("1024x512 bf16+cl b4", 1024, 512, 1, 4, "bf16", True, False),
]
N_FRAMES = 9


def make_trainer(width, height, n_local, batch, precision, channels_last, compile_, device, quick):
    ngf = (8 if quick else 128) // 2**n_local  # the global generator keeps ngf * 2**n_local = 128
    opts = options_mod.from_dict({
        "model": {"ngf": ngf, "n_downsample": 2 if quick else 3,
                  "n_blocks": 2 if quick else 9, "n_local": n_local},
        "discriminator": {"ndf": 8 if quick else 64, "num_scales": 2, "temporal_scales": 2, "k_frames": 3},
        "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": 1000, "n_frames": N_FRAMES, "scales": n_local}],
        "train": {"batch_size": batch, "precision": precision, "channels_last": channels_last, "compile": compile_,
                  "first_frame": "real"},
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


def count_flops(trainer, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step(batch, 0)
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
def inference_fps(trainer, batch, device, repeats) -> float:
    inputs = trainer.to_inputs({k: v.to(device) for k, v in batch.items()})
    trainer.generator.eval()
    with trainer.autocast():
        trainer.generate(inputs, trainer.opts.schedule[0].scales)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            trainer.generate(inputs, trainer.opts.schedule[0].scales)
        sync(device)
    trainer.generator.train()
    frames = repeats * inputs["frames"].shape[0] * (N_FRAMES - 2)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes (CPU check)")
    parser.add_argument("--peak", type=float, default=790.0, help="the card's dense bf16 TFLOP/s")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cases", nargs="*", help="labels of the cases to run (default: all)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    torch.backends.cudnn.benchmark = True
    rows, flops_of_shape = [], {}
    for label, width, height, n_local, batch_size, precision, channels_last, compile_ in CASES:
        if args.cases and label not in args.cases:
            continue
        if args.quick:
            width, height = width // 8, height // 8
            if compile_:
                continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer = make_trainer(width, height, n_local, batch_size, precision, channels_last, compile_, device, args.quick)
        batch = synthetic_batch(batch_size, width, height, device)
        try:
            flops = count_flops(trainer, batch) if not compile_ else None
            step = time_training(trainer, batch, device, warmup=2 if args.quick else 5,
                                 repeats=2 if args.quick else args.repeats)
            fps_infer = inference_fps(trainer, batch, device, 2 if args.quick else args.repeats)
        except torch.OutOfMemoryError:
            rows.append((label, "OOM", "", "", "", "", ""))
            continue
        frames = batch_size * (N_FRAMES - 2)
        memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        shape = (width, height, n_local, batch_size)
        if flops is None:  # compiled: the same FLOPs as the eager case of that shape
            flops = flops_of_shape.get(shape)
        flops_of_shape[shape] = flops
        tflops = flops / step / 1e12 if flops else float("nan")
        rows.append((f"{label}" + (" (quick)" if args.quick else ""), f"{frames / step:.1f}",
                     f"{flops / frames / 1e12:.2f}" if flops else "?", f"{tflops:.1f}",
                     f"{100 * tflops / args.peak:.0f}%", f"{fps_infer:.0f}", f"{memory:.1f}"))
        del trainer, batch
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print_table(f"vid2vid training speed on {card} ({N_FRAMES}-frame clips, {N_FRAMES - 2} generated per clip)",
                ["case", "train frames/s", "TFLOP per train frame", "achieved TFLOP/s", "% of peak",
                 "inference frames/s", "peak GiB"], rows)


if __name__ == "__main__":
    main()
