"""Stage 'covst': the COVST baseline (paper Table 1) from the frame_by_frame run's generator, its deep
features warped by the source flow (model/covst.py).

    python -m pipeline.stages.covst --checkpoint results/demo/checkpoints/frame_by_frame/final.pt \
        --cache results/demo/cache/index.json --split val --output results/demo/synth/covst
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from model.covst import run
from model.synthesis import SynthesisError
from pipeline.core.cli_help import cli_parser
from pipeline.datasets.manifest import add_rate_args, rates_from_args


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.covst", __doc__)
    parser.add_argument("--checkpoint", type=Path, required=True, help="the frame_by_frame (pix2pixHD) run's final.pt")
    parser.add_argument("--cache", nargs="+", required=True, help="cache shards or index.json")
    parser.add_argument("--split", default="val", help="the split whose sequences are read (default: %(default)s)")
    parser.add_argument("--output", type=Path, required=True, help="the folder of the videos and frames (results/<ds>/synth/covst)")
    add_rate_args(parser)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--weights", choices=["auto", "average", "raw"], default="auto",
                        help="the generator's weight average (auto: where the checkpoint has one) or its last weights")
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
