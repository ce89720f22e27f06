"""The paper's Table 3 analogue on synthcity (future video prediction), with seeds.

    python benchmarks/prediction_seeds.py [--seeds 0 1 2] [--dataset demo] [--device cpu]

On the demo's cache, labels, segmenter and trained vid2vid (results/demo/, `make demo` and
`snakemake results/demo/prediction/fid.json` first; ``--dataset demo_motion``: the same streets
with motion a constant-motion guess cannot follow, rendered by the demo's vid2vid), the
semantic-map predictor and the PredNet / MCNet baselines are trained with each seed exactly as datasets.<ds>.prediction defines them (only
the seed differs), every method predicts the val sequences and the evaluate_prediction stage scores
them. Seed ``prediction.predictor.seed`` (0) reuses the demo's own results/<ds>/prediction/. Other
seeds go to results/<ds>/prediction/seeds/<k>/ (a finished step is not run again). Prints, per
method and metric (over all predicted frames), the mean over seeds and their standard deviation;
writes results/<ds>/prediction/seeds.json (every seed's values with their bootstrap spreads).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._table import print_table  # noqa: E402
from pipeline.core import config as config_mod  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
KIND_OF = {"vid2vid": "labels", "prednet": "prednet", "mcnet": "mcnet"}
SHOWN = ("psnr", "ssim", "segmentation_miou", "image_fid_segmenter_standin", "image_kid_segmenter_standin",
         "colour_distance_lab", "spectrum_distance", "temporal_warping_error")


def _run(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if result.returncode:
        raise SystemExit(f"error: {args[0]} failed (exit {result.returncode}); see {log}")


def seed_scores(ds, seed: int, device: str, generator: Path) -> dict:
    """Train, predict and score one seed; returns its fid.json's methods (``generator``: the render
    run's checkpoint)."""
    settings = ds.settings.prediction
    own = seed == settings.predictor.seed
    root = ds.results / "prediction" if own else ds.results / "prediction" / "seeds" / str(seed)
    scores = root / "fid.json"
    if scores.is_file():
        return json.loads(scores.read_text())["methods"]
    dataset = ["--dataset", ds.name, "--results", str(ds.results.parent)]
    cache = str(ds.results / "cache" / "index.json")
    for method in settings.methods:
        kind = KIND_OF.get(method)
        if kind and not (root / kind / "final.pt").is_file():
            _run(["pipeline.stages.train_predictor", *dataset, "--kind", kind, "--seed", str(seed), "--out",
                  str(root / kind), "--device", device], root / "logs" / f"train_{kind}.log")
        if not (root / "synth" / method / "synthesis.json").is_file():
            models = ["--predictor", str(root / kind / "final.pt")] if kind else []
            if method == "vid2vid":
                models += ["--generator", str(generator)]
            _run(["pipeline.stages.predict", "--method", method, *models, "--cache", cache, "--observed",
                  str(settings.observed), "--predicted", str(settings.predicted), "--output",
                  str(root / "synth" / method), "--device", device], root / "logs" / f"predict_{method}.log")
    _run(["pipeline.stages.evaluate_prediction", *dataset, "--methods", *settings.methods, "--observed",
          str(settings.observed), "--predicted", str(settings.predicted), "--synth-root", str(root / "synth"),
          "--output", str(scores)], root / "logs" / "evaluate_prediction.log")
    return json.loads(scores.read_text())["methods"]


def _cell(values: list[float]) -> str:
    """mean ± std over the seeds (the floors have no seed: their one value)."""
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = config_mod.load([config_mod.DEFAULT_CONFIG])
    ds = config_mod.dataset(config, args.dataset)
    runs_of = config_mod.dataset(config, ds.settings.checkpoints_from) if ds.settings.checkpoints_from else ds
    generator = runs_of.results / "checkpoints" / ds.settings.prediction.render_run / "final.pt"
    per_seed = {seed: seed_scores(ds, seed, args.device, generator) for seed in args.seeds}
    methods = ds.settings.prediction.methods
    rows, summary = [], {}
    for method in methods:
        row = [method]
        for metric in SHOWN:
            values = [per_seed[s][method]["all"].get(metric, {}).get("value") for s in args.seeds]
            values = [v for v in values if v is not None]
            summary.setdefault(method, {})[metric] = {"mean": float(np.mean(values)) if values else None,
                                                      "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                                                      "seeds": values}
            row.append(_cell(values))
        rows.append(row)
    print_table(f"future prediction on {args.dataset}: {ds.settings.prediction.observed} observed, "
                f"{ds.settings.prediction.predicted} predicted frames, mean ± std over seeds {args.seeds}",
                ["method", *SHOWN], rows)
    out = ds.results / "prediction" / "seeds.json"
    out.write_text(json.dumps({"seeds": args.seeds, "summary": summary, "per_seed": per_seed}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
