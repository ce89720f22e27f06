"""Optical flow against synthcity's exact flow: end-point error and speed of the CPU estimators.

    python benchmarks/flow_quality.py [--sequences 3]

EPE is averaged over the pixels that stay visible (synthcity's validity mask), forward flow t->t+1,
on 3 sequences x 10 frames; 'consistent' is the share of pixels the forward-backward check keeps
and 'precision' the share of those that are truly visible. Speed: frame pairs/s on one core,
forward + backward + check (what the flow stage computes per pair).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _table import print_table  # noqa: E402 (sibling module of the script)

from pipeline.datasets.synthcity.render import render_sequence  # noqa: E402
from pipeline.datasets.synthcity.scene import build_scene  # noqa: E402
from pipeline.flow.dis import PRESETS, estimate_pair  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    for width, height in ((256, 128), (512, 256)):
        clips = [list(render_sequence(build_scene(seed, width, height, 10))) for seed in range(args.sequences)]
        for name, preset in PRESETS.items():
            dis = cv2.DISOpticalFlow_create(preset)
            epes, kept, precision, pairs = [], [], [], 0
            start = time.perf_counter()
            for clip in clips:
                for (frame, flow, valid), (nxt, _, _) in zip(clip[:-1], clip[1:]):
                    forward, confidence, _, _ = estimate_pair(dis, frame.rgb, nxt.rgb)
                    epes.append(np.linalg.norm(forward - flow, axis=0)[valid].mean())
                    consistent = confidence.astype(bool)
                    kept.append(consistent.mean())
                    precision.append((consistent & valid).sum() / max(consistent.sum(), 1))
                    pairs += 1
            elapsed = time.perf_counter() - start
            rows.append((f"{width}x{height}", f"DIS {name}", np.mean(epes), np.mean(kept), np.mean(precision),
                         pairs / elapsed))
    print_table("optical flow vs synthcity ground truth (forward flow, visible pixels)",
                ["resolution", "method", "EPE (px)", "consistent", "precision", "pairs/s (1 core)"],
                [[res, method, f"{epe:.2f}", f"{kept:.0%}", f"{prec:.0%}", f"{speed:.0f}"]
                 for res, method, epe, kept, prec, speed in rows])
    print("\nLearned models (FlowNet2, RAFT) need their pretrained weights for a meaningful EPE; they "
          "arrive with the annotation issue.")


if __name__ == "__main__":
    main()
