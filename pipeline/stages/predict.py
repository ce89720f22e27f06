"""Stage 'predict': future video prediction (paper section 4, Table 3; model/prediction.py) for every
sequence of a split: from its first ``--observed`` frames, the next ``--predicted`` by one method.

    python -m pipeline.stages.predict --method vid2vid --predictor results/demo/prediction/predictor/final.pt \
        --generator results/demo/checkpoints/vid2vid/final.pt --cache results/demo/cache/index.json \
        --observed 4 --predicted 8 --output results/demo/prediction/synth/vid2vid

Writes ``<output>/<seq>/NNNNNN.png`` (frame 0 is the first predicted one, i.e. the sequence's frame
``observed``) and ``<output>/<seq>.mp4``, then ``synthesis.json`` last. Methods: ``vid2vid`` (the
predicted semantic maps rendered by the generator), ``prednet`` and ``mcnet`` (the baselines, their
own checkpoints as ``--predictor``), ``repeat`` and ``flow_extrapolate`` (floors).
The maps ``vid2vid`` predicts are kept too, as ``<output>/<seq>_labels.npy`` (labelIds).
"""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path

import numpy as np

from model import prediction
from model.synthesis import SynthesisError, Synthesizer, sequence_inputs, write_sequence, write_summary
from pipeline.core.atomic import atomic_file
from pipeline.core.cli_help import cli_parser
from pipeline.core.devices import pick_device
from pipeline.core.errors import InputError, main_guard
from pipeline.datasets.manifest import add_rate_args, rates_from_args

log = logging.getLogger("pipeline.stages.predict")
METHODS = ("vid2vid", "prednet", "mcnet", *prediction.FLOORS)


def predict(method: str, cache: list[str], split: str, observed: int, predicted: int, output: Path,
            predictor_path: Path | None = None, generator_path: Path | None = None, device: str | None = None,
            rates: dict[str, float] | None = None, fps: float = 17.0) -> list[Path]:
    """Predict every sequence of ``split`` with ``method``; returns the videos written."""
    dev = pick_device(device)
    predictor = synthesizer = None
    if method not in prediction.FLOORS:
        from model.prediction_trainer import load_predictor

        if predictor_path is None or (method == "vid2vid" and generator_path is None):
            raise ValueError(f"method {method} needs --predictor" + (" and --generator" if method == "vid2vid" else ""))
        _, predictor, trained_on = load_predictor(predictor_path, dev, "labels" if method == "vid2vid" else method)
        if method == "vid2vid":
            synthesizer = Synthesizer.load(generator_path, str(dev))
            if predictor.cfg.observed > observed:
                raise ValueError(f"the predictor looks at {predictor.cfg.observed} maps; only {observed} are observed")
        elif trained_on != observed:
            log.warning("%s was trained on %d observed frames, predicts from %d", predictor_path, trained_on, observed)
    written = []
    for name, n, labels_seq, instances_seq, frame_at in sequence_inputs(cache, split):
        if n < observed + predicted:
            raise InputError(Path(cache[0]), f"sequence {name} has {n} frames; prediction needs "
                                             f"{observed} observed + {predicted} predicted")
        frames = np.stack([frame_at("frames", i) for i in range(observed)])
        if method == "repeat":
            future = prediction.repeat_last(frames, predicted)
        elif method in ("prednet", "mcnet"):
            future = prediction.predict_frames(predictor, frames, predicted, dev)
        elif method == "flow_extrapolate":  # flow_backward i: frame i + 1 -> i
            future = prediction.extrapolate_flow(frames, frame_at("flow_backward", observed - 2), predicted)
        else:
            if instances_seq is None:
                raise InputError(Path(cache[0]), "prediction with vid2vid needs a labels cache (not face / pose maps)")
            labels = np.stack(list(itertools.islice(labels_seq, observed)))
            instances = list(itertools.islice(instances_seq, observed))
            instances = None if instances[0] is None else np.stack(instances)
            last_flow = frame_at("flow_backward", observed - 2) if predictor.cfg.flow_prior else None
            maps = prediction.predict_labels(predictor, labels, predicted, dev, last_flow)
            with atomic_file(output / f"{name}_labels.npy") as tmp, open(tmp, "wb") as handle:
                np.save(handle, maps)
            future = prediction.render_predicted(synthesizer, frames, labels, instances, maps)
        written.append(write_sequence(iter(future), output, name, (rates or {}).get(name, fps)))
    write_summary(output, {"method": method, "split": split, "observed": observed, "predicted": predicted,
                           "predictor": str(predictor_path) if predictor_path else None,
                           "generator": str(generator_path) if generator_path else None,
                           "sequences": [p.stem for p in written]})
    return written


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.predict", __doc__)
    parser.add_argument("--method", choices=METHODS, required=True, help="the prediction method")
    parser.add_argument("--cache", nargs="+", required=True, help="cache shards or index.json")
    parser.add_argument("--split", default="val", help="the split whose sequences are read (default: %(default)s)")
    parser.add_argument("--observed", type=int, required=True, help="frames given to the method")
    parser.add_argument("--predicted", type=int, required=True, help="frames predicted after them")
    parser.add_argument("--predictor", type=Path, help="the trained predictor's final.pt (vid2vid: the semantic-map one)")
    parser.add_argument("--generator", type=Path, help="the rendering run's final.pt (method vid2vid)")
    parser.add_argument("--output", type=Path, required=True, help="the method's folder (results/<ds>/prediction/synth/<method>)")
    add_rate_args(parser)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        predict(args.method, args.cache, args.split, args.observed, args.predicted, args.output, args.predictor,
                args.generator, args.device, rates_from_args(args), args.fps)
    except (SynthesisError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
