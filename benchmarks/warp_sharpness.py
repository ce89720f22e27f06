"""How much detail Eq. 4's warp keeps when a frame is warped again and again, per interpolation.

    python benchmarks/warp_sharpness.py [--sequences 2] [--size 256 128]

A video made by Eq. 4 is, wherever the occlusion mask is low, the previous output warped by the
flow, frame after frame. On synthcity sequences (exact backward flow), frame 0 is warped forward
k times with model.flow_ops.warp and its detail (variance of the Laplacian) is compared with the
real frame k's: the ratio after k warps, per interpolation mode (model.warp_mode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._data import build_cache  # noqa: E402
from benchmarks._table import print_table  # noqa: E402
from model.flow_ops import WARP_MODES, warp  # noqa: E402

STEPS = (1, 2, 5, 10, 20, 29)


def detail(frame: torch.Tensor) -> float:
    """Variance of the Laplacian of a (3, H, W) frame in [0, 255]."""
    gray = cv2.cvtColor(frame.clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("W", "H"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        _, shard = build_cache(Path(tmp), *args.size, sequences=args.sequences)
        tensors = load_file(str(shard))
    names = sorted(k.split("/")[0] for k in tensors if k.endswith("/frames"))
    ratios = {mode: {k: [] for k in STEPS} for mode in WARP_MODES}
    for name in names:
        frames = torch.from_numpy(tensors[f"{name}/frames"]).permute(0, 3, 1, 2).float()
        flows = torch.from_numpy(tensors[f"{name}/flow_backward"].astype(np.float32))  # t -> t-1
        for mode in WARP_MODES:
            current = frames[:1]
            for t in range(1, len(frames)):
                current = warp(current, flows[t - 1:t], mode)
                if t in STEPS:
                    ratios[mode][t].append(detail(current[0]) / detail(frames[t]))
    rows = [[mode] + [f"{np.mean(ratios[mode][k]):.2f}" for k in STEPS] for mode in WARP_MODES]
    print_table(f"detail kept after k warps (Laplacian variance / the real frame k's), {len(names)} synthcity "
                f"sequences at {args.size[0]}x{args.size[1]}", ["interpolation"] + [f"k={k}" for k in STEPS], rows)


if __name__ == "__main__":
    main()
