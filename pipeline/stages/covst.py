"""Stage 'covst': the COVST baseline (paper Table 1) from the frame_by_frame run's generator, its deep
features warped by the source flow (model/covst.py).

    python -m pipeline.stages.covst --checkpoint results/demo/checkpoints/frame_by_frame/final.pt \
        --cache results/demo/cache/index.json --split val --output results/demo/synth/covst
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model.covst import run
from pipeline.datasets.manifest import add_rate_args, rates_from_args
from model.synthesis import SynthesisError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.stages.covst", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the frame_by_frame (pix2pixHD) run's final.pt")
    parser.add_argument("--cache", nargs="+", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--output", type=Path, required=True)
    add_rate_args(parser)
    parser.add_argument("--device")
    parser.add_argument("--weights", choices=["auto", "average", "raw"], default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(args.checkpoint, args.cache, args.split, args.output, args.fps, args.device, args.weights,
            rates_from_args(args))
    except SynthesisError as err:
        print(f"error: {args.checkpoint}: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
