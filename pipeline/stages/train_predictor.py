"""Stage 'train_predictor': train a network of future video prediction (paper section 4, Table 3;
model/prediction_trainer.py) on the cache's train split: ``--kind labels`` the semantic-map
predictor (model/label_predictor.py), ``prednet`` / ``mcnet`` the baselines (model/frame_predictors.py).

    python -m pipeline.stages.train_predictor --dataset demo --kind labels --out results/demo/prediction/labels [--seed 1]

The network and its training come from ``datasets.<ds>.prediction``: ``observed``, and
``predictor`` (labels) or ``baselines`` (prednet, mcnet). A run's latest.pt is always resumed when
it was made with the same settings (a killed job goes on where it stopped).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model.frame_predictors import FramePredictorConfig
from model.label_predictor import LabelPredictorConfig
from model.prediction_trainer import KINDS, PredictorTrainOptions, train_predictor
from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import main_guard


def predictor_setup(prediction, kind: str, seed: int | None = None):
    """(network config, training options) of ``kind`` from ``datasets.<ds>.prediction`` (``seed``
    overrides the settings' seed)."""
    settings = dataclasses.asdict(prediction.predictor if kind == "labels" else prediction.baselines)
    config_cls = LabelPredictorConfig if kind == "labels" else FramePredictorConfig
    model_keys = {f.name for f in dataclasses.fields(config_cls)}
    fixed = {"observed": prediction.observed} if kind == "labels" else {"kind": kind}
    model_cfg = config_cls(**fixed, **{k: v for k, v in settings.items() if k in model_keys})
    options = PredictorTrainOptions(**{k: tuple(v) if k == "crop" and v else v for k, v in settings.items()
                                       if k not in model_keys})
    return model_cfg, options if seed is None else dataclasses.replace(options, seed=seed)


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.train_predictor", __doc__)
    add_dataset_args(parser)
    parser.add_argument("--kind", choices=KINDS, default="labels", help="the network trained (default: %(default)s, the "
                        "semantic-map predictor)")
    parser.add_argument("--out", type=Path, help="the run's folder (default: <results>/<ds>/prediction/<kind>)")
    parser.add_argument("--cache", nargs="+", help="cache shards or index.json (default: <results>/<ds>/cache/index.json)")
    parser.add_argument("--seed", type=int, help="override the settings' seed")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (resume later)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    model_cfg, options = predictor_setup(ds.settings.prediction, args.kind, args.seed)
    out = args.out or ds.results / "prediction" / args.kind
    final = train_predictor(args.kind, args.cache or [str(ds.results / "cache" / "index.json")], out, model_cfg, options,
                            observed=ds.settings.prediction.observed, dataset=ds.name, device=args.device,
                            max_steps=args.max_steps)
    print(final if final.is_file() else f"stopped at --max-steps; resume from {out / 'latest.pt'}")


if __name__ == "__main__":
    main()
