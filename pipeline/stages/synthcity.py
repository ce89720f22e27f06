"""Stage 'synthcity': render the embedded demo dataset into its data root (Cityscapes layout).

    python -m pipeline.stages.synthcity --dataset demo [--sequences synth000_000000 ...]

Writes, per sequence, ``leftImg8bit_sequence/``, ``gtFine/`` (the annotated frame) and
``synthcity_gt/`` (labels, instances, flow, validity, depth for every frame); see
pipeline/datasets/synthcity/__init__.py for the layout and the renderer's modules for the method.
"""

from __future__ import annotations

import time

from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard
from pipeline.core.progress import progress
from pipeline.datasets import synthcity


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.synthcity", __doc__)
    add_dataset_args(parser)
    parser.add_argument("--sequences", nargs="+", help="sequence names (default: all)")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    if ds.synthcity is None:
        raise InputError(f"{ds.config_key}.generate.synthcity", "not set: this dataset is not generated")
    cfg = ds.synthcity
    seqs = synthcity.sequences(cfg)
    if args.sequences:
        by_name = {s.name: s for s in seqs}
        unknown = [n for n in args.sequences if n not in by_name]
        if unknown:
            raise InputError(f"{ds.config_key}.generate.synthcity", f"has no sequences {unknown}")
        seqs = [by_name[n] for n in args.sequences]
    with progress(total=len(seqs) * cfg.frames, desc="synthcity", unit="frame") as bar:
        for seq in seqs:
            start = time.perf_counter()
            synthcity.write_sequence(ds.root, seq, cfg, progress=bar.update)
            elapsed = time.perf_counter() - start
            log.info("%s (%s): %d frames %dx%d in %.2fs", seq.name, seq.split, cfg.frames, *cfg.size, elapsed)


if __name__ == "__main__":
    main()
