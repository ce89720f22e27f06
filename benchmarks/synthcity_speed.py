"""synthcity generation speed on one core: frames/s at 256x128 and 512x256.

    python benchmarks/synthcity_speed.py [--frames 30] [--sequences 3]

'render+flow' is the renderer alone (RGB, labels, instances, depth, exact forward and backward
flow and their validity masks);
'+ write' adds writing the Cityscapes-layout PNGs and the flow archive, as the stage does.
Target (foundation issue): at least 30 frames/s at 256x128 including flow.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from pipeline.datasets import synthcity  # noqa: E402
from _table import print_table  # noqa: E402 (sibling module of the script)
from pipeline.datasets.synthcity.render import render_sequence  # noqa: E402
from pipeline.datasets.synthcity.scene import build_scene  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--sequences", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = []
    for width, height in ((256, 128), (512, 256)):
        render_fps, write_fps = [], []
        for seed in range(args.sequences):
            scene = build_scene(seed, width, height, args.frames)
            start = time.perf_counter()
            for _ in render_sequence(scene, backward=True):
                pass
            render_fps.append(args.frames / (time.perf_counter() - start))
            cfg = synthcity.settings(seed=seed, size=[width, height], frames=args.frames, train=1, val=0,
                                     annotated_frame=min(19, args.frames - 1))
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                synthcity.write_sequence(tmp, synthcity.sequences(cfg)[0], cfg)
                write_fps.append(args.frames / (time.perf_counter() - start))
        rows.append((f"{width}x{height}", statistics.median(render_fps), statistics.median(write_fps)))
    print_table(f"synthcity on one core ({args.sequences} sequences x {args.frames} frames, median)",
                ["resolution", "render+flow frames/s", "+ write frames/s"],
                [[res, f"{render:.1f}", f"{write:.1f}"] for res, render, write in rows])


if __name__ == "__main__":
    main()
