"""Stage 'train': the vid2vid trainer on a dataset's cache, one job per run (model/trainer.py).

    python -m pipeline.stages.train --options run.yaml [--resume] [--max-steps N] [--device cuda]
    torchrun --standalone --nproc_per_node 4 -m pipeline.stages.train --options run.yaml   # DDP, one node

Exit status 2: the options or the cache are wrong (the message names which); 3: a non-finite loss
stopped the run, its last good checkpoint intact.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from model import options as options_mod
from model.trainer import NonFiniteLoss, train
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.train", __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--options", help="training options file (YAML/JSON)")
    source.add_argument("--options-json", help="training options as a JSON mapping (what the Snakemake rule passes)")
    parser.add_argument("--set-json", help="JSON mapping merged over the options (e.g. cache, output)")
    parser.add_argument("--resume", action="store_true", help="continue from <output>/latest.pt if it exists")
    parser.add_argument("--max-steps", type=int, help="stop after this step (checkpointed), for staged runs")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = args.options or "--options-json"
    try:
        if args.options:
            data = options_mod.yaml.safe_load(Path(args.options).read_text()) or {}
        else:
            data = json.loads(args.options_json)
        if args.set_json:
            data.update(json.loads(args.set_json))
        opts = options_mod.from_dict(data)
    except (OSError, options_mod.OptionsError, TypeError, ValueError) as err:
        print(f"error: {where}: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        train(opts, resume=args.resume, max_steps=args.max_steps, device=args.device)
    except NonFiniteLoss:
        sys.exit(3)
    except (InputError, options_mod.OptionsError) as err:  # a damaged checkpoint, a cache that does not fit
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
