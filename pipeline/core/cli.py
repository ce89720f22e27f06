"""What every stage CLI shares: logging, and finding its dataset's settings.

A stage is told its dataset either by name plus config files (run by hand: the same files the
Snakefile reads) or by ``--dataset-json`` (run by Snakemake: the validated ``datasets.<name>``
mapping, so command-line ``--config`` overrides reach the stage too).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.core import config as config_mod
from pipeline.core.cli_help import cli_parser


def setup_logging(verbose: bool = False) -> logging.Logger:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return logging.getLogger("pipeline")


def add_dataset_args(parser: argparse.ArgumentParser, ffmpeg: bool = False) -> None:
    """--dataset, --config, --dataset-json, --results, -v; with ``ffmpeg`` (stages that decode
    video with the configured binary) also --ffmpeg."""
    parser.add_argument("--dataset", required=True, help="dataset name (config/<name>.yaml)")
    parser.add_argument("--config", nargs="+", default=[config_mod.DEFAULT_CONFIG], metavar="YAML",
                        help="config files, merged in order (default: %(default)s and its dataset_files)")
    parser.add_argument("--dataset-json", help="the validated datasets.<name> mapping (as Snakemake passes it)")
    parser.add_argument("--results", help="results folder (default: the config's 'results')")
    if ffmpeg:
        parser.add_argument("--ffmpeg", help="ffmpeg binary (default: the config's 'ffmpeg', else imageio-ffmpeg's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG lines too")


def dataset_from_args(args: argparse.Namespace) -> tuple[config_mod.Dataset, dict]:
    """The Dataset and the whole config for a stage's command line."""
    if args.dataset_json:
        cfg = {"results": args.results or "results", "ffmpeg": getattr(args, "ffmpeg", None),
               "datasets": {args.dataset: json.loads(args.dataset_json)}}
        config = config_mod.validate(cfg, [("--dataset-json", cfg)])
    else:
        config = config_mod.load(args.config)
        if args.results:
            config["results"] = args.results
        if getattr(args, "ffmpeg", None):
            config["ffmpeg"] = args.ffmpeg
    return config_mod.dataset(config, args.dataset), config


def dataset_json(ds_cfg: dict) -> str:
    """The inverse of --dataset-json: what the Snakefile passes."""
    return json.dumps(ds_cfg, sort_keys=True, separators=(",", ":"))


def stage_command(module: str, dataset: str, ds_cfg: dict, results: str | Path, *extra: str,
                  subcommand: tuple[str, ...] = ()) -> list[str]:
    """The argv of a stage CLI run the way its rule runs it (``python -m pipeline.stages.<module>
    [subcommand] --dataset ... --dataset-json ... --results ... extra``; a dotted ``module`` is
    the whole module name, e.g. ``pipeline.preference``), for the harnesses and benchmarks that
    run stages in their own processes."""
    import sys

    return [sys.executable, "-m", module if "." in module else f"pipeline.stages.{module}", *subcommand, "--dataset", dataset,
            "--dataset-json", dataset_json(ds_cfg), "--results", str(results), *extra]


def relative_to(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


def annotator_training_main(prog: str, doc: str, default_out: str, train, argv: list[str] | None = None) -> None:
    """The command line of an annotator trainer (train_segmenter, train_instances): dataset
    arguments, ``--out`` (default ``<results>/<ds>/<default_out>``) and ``--device``; prints the
    steps, seconds and held-out quality of ``train(ds, out, device) -> metrics``."""
    parser = cli_parser(prog, doc)
    add_dataset_args(parser)
    parser.add_argument("--out", type=Path, help=f"checkpoint path (default: <results>/<ds>/{default_out})")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:N")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    metrics = train(ds, args.out or ds.results / default_out, args.device)
    print(json.dumps({k: metrics[k] for k in ("steps", "seconds", "held_out") if k in metrics}))
