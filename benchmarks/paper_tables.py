"""The paper's Table 1 (baselines) and Table 2 (ablations) analogues on synthcity, with seeds.

    python benchmarks/paper_tables.py [--seeds 0 1 2] [--methods frame_by_frame covst vid2vid ...]
        [--dataset demo] [--workdir benchmarks/out/paper_tables] [--device cpu]

On the demo dataset's cache, labels and trained segmenter (results/demo/, made by `make demo`:
run it first), every run of ``--methods`` is trained with each seed exactly as config/demo.yaml
defines it (``train.seed`` set; ``first_frames_from`` runs take that seed's frame_by_frame
generator), synthesized on the val split (covst: frame_by_frame's generator with warped
features), and evaluated by the evaluation stage (pipeline/stages/evaluate.py). The table gives, per
method and metric, the mean over seeds and their standard deviation (and, in the JSON, every
seed's value with its bootstrap spread over clips). Each seed's runs go to
``<workdir>/seed<k>/<dataset>/``: an interrupted benchmark resumes where it stopped (a run whose
final.pt is there is not trained again: after changing the config, delete the workdir), and a seed
whose runs are all evaluated already is not evaluated again. The seed the
demo itself trained with (``train.seed``, 0) reuses the demo's finished runs (checkpoints and
synthesized videos, linked) instead of training them again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._table import print_table  # noqa: E402
from pipeline.core import config as config_mod  # noqa: E402
from pipeline.core import runs as runs_mod  # noqa: E402
from pipeline.metrics import METRICS  # noqa: E402
from pipeline.stages import evaluate as evaluate_mod  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TABLE1 = ["frame_by_frame", "covst", "vid2vid"]
TABLE2 = ["no_fg", "no_dv", "no_flow"]
SHARED = ("cache", "labels", "segmenter", "fid_stats")  # read from the demo's results, never rewritten


def _run(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if result.returncode:
        raise SystemExit(f"error: {' '.join(args[:2])} failed (exit {result.returncode}); see {log}")


def seed_results(source: Path, workdir: Path, seed: int, reused_runs: list[str] = ()) -> Path:
    """<workdir>/seed<k>/<ds>/ with links to the demo's cache, labels, segmenter and statistics,
    and to the demo's finished runs in ``reused_runs`` (those trained with this seed)."""
    target = workdir / f"seed{seed}" / source.name
    target.mkdir(parents=True, exist_ok=True)
    (source / "fid_stats").mkdir(exist_ok=True)
    shared = list(SHARED)
    for run in reused_runs:  # covst has no checkpoint of its own: only its videos are linked
        if (source / "synth" / run / "synthesis.json").is_file():
            shared += [f"checkpoints/{run}", f"synth/{run}"]
    for name in shared:
        link = target / name
        if not link.exists() and (source / name).exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((source / name).resolve(), link)
    return target


def runs_trained_with(runs: dict, methods: list[str], seed: int) -> list[str]:
    """The methods whose demo run (and first-frame run) used ``seed``: their results are reusable."""
    def seed_of(run: str) -> int:
        return int(runs_mod.run_settings(runs, run).get("train", {}).get("seed", 0))
    out = []
    for method in methods:
        base = "frame_by_frame" if method == "covst" else method
        chain = [base] + ([runs_mod.first_frames_run(runs, base)] if runs_mod.first_frames_run(runs, base) else [])
        if all(seed_of(run) == seed for run in chain):
            out.append(method)
    return out


def train_and_synthesize(ds_cfg: dict, dataset: str, results: Path, run: str, seed: int, device: str | None) -> None:
    runs = ds_cfg["runs"]
    cache = results / "cache" / "index.json"
    synth = results / "synth" / run
    if (synth / "synthesis.json").is_file():
        return
    device_args = ["--device", device] if device else []
    if run == "covst":
        train_and_synthesize(ds_cfg, dataset, results, "frame_by_frame", seed, device)
        _run(["-m", "pipeline.stages.covst", "--checkpoint", str(runs_mod.checkpoint(results, "frame_by_frame")),
              "--cache", str(cache), "--output", str(synth), *device_args], results / "logs" / "covst.log")
        return
    final = runs_mod.checkpoint(results, run)
    source = runs_mod.first_frames_run(runs, run)
    if source:  # its generator makes this run's first frames (in training, or at synthesis only)
        train_and_synthesize(ds_cfg, dataset, results, source, seed, device)
    if not final.is_file():
        options = runs_mod.run_settings(runs, run)
        paths = runs_mod.trainer_paths(runs, run, dataset, str(cache), str(final.parent), "",
                                       str(runs_mod.checkpoint(results, source)) if source else None)
        train = {**options.get("train", {}), **paths.pop("train", {}), "seed": seed}
        _run(["-m", "pipeline.stages.train", "--options-json", json.dumps({**options, "train": train}),
              "--set-json", json.dumps(paths), "--resume", *device_args], results / "logs" / f"train_{run}.log")
    first = ["--first-frames-checkpoint", str(runs_mod.checkpoint(results, source))] \
        if source and not runs_mod.first_frames_in_training(runs, run) else []
    _run(["-m", "pipeline.stages.synthesize", "--checkpoint", str(final), "--cache", str(cache), "--split", "val",
          "--output", str(synth), *first, *device_args], results / "logs" / f"synthesize_{run}.log")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=TABLE1 + TABLE2)
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "paper_tables")
    parser.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--no-reuse-demo", dest="reuse_demo", action="store_false",
                        help="train every seed here, also the one the demo's finished runs used")
    args = parser.parse_args(argv)
    config = config_mod.load([REPO / "config" / "config.yaml"])
    ds = config_mod.dataset(config, args.dataset)
    source = (REPO / ds.results) if not ds.results.is_absolute() else ds.results
    needed = ["cache/index.json"] + (["segmenter/model.pt"] if ds.cfg["labels"]["mode"] == "train" else [])
    missing = [name for name in needed if not (source / name).is_file()]
    # the evaluation the workflow runs: the same baseline, first frames left out and evaluator
    baseline, skip_first = runs_mod.comparison(ds.settings.evaluate, ds.settings.runs, args.methods)
    compare = {"baseline": baseline, "skip_first": skip_first, "evaluator": None}
    if ds.settings.evaluate.evaluator:
        evaluator_ds = config_mod.dataset(config, ds.settings.evaluate.evaluator)
        compare["evaluator"] = (REPO / evaluator_ds.results) / "segmenter" / "model.pt"
        missing.extend([] if compare["evaluator"].is_file() else [str(compare["evaluator"])])
    if missing:
        raise SystemExit(f"error: {source}: {missing} missing; run `make demo` (or snakemake {source}/fid.json) first")
    per_seed = {}
    for seed in args.seeds:
        reused = runs_trained_with(ds.cfg["runs"], args.methods, seed) if args.reuse_demo else []
        results = seed_results(source, args.workdir, seed, reused)
        for method in args.methods:
            print(f"seed {seed}: {method}", flush=True)
            train_and_synthesize(ds.cfg, args.dataset, results, method, seed, args.device)
        per_seed[seed] = evaluated(ds, results, args.methods, compare)
    summary = summarize(per_seed, args.methods)
    (args.workdir / "paper_tables.json").write_text(json.dumps({"seeds": args.seeds, "summary": summary,
                                                               "per_seed": per_seed}, indent=1, default=str))
    shown = [m for m in METRICS if any(summary[m_].get(m) for m_ in summary)]
    for title, methods in (("Table 1 analogue: baselines", [m for m in args.methods if m in TABLE1]),
                           ("Table 2 analogue: ablations", ["vid2vid"] + [m for m in args.methods if m in TABLE2])):
        rows = [[m] + [_cell(summary[m].get(k)) for k in shown] for m in methods if m in summary]
        headers = ["method"] + [f"{k} ({METRICS[k].direction} better)" for k in shown]
        print_table(f"{title} on {args.dataset}, mean ± std over seeds {args.seeds}", headers, rows)


def evaluated(ds, results: Path, methods: list[str], compare: dict | None = None) -> dict:
    """The evaluation stage's figures for one seed's runs (``compare``: its baseline, skip_first and
    evaluator, as the workflow's evaluate rule passes them); kept in <seed>/paper_tables.json and
    reused while it covers every method and is newer than each method's synthesized videos."""
    saved = results / "paper_tables.json"
    if saved.is_file():
        previous = json.loads(saved.read_text())
        synthesized = [(results / "synth" / m / "synthesis.json").stat().st_mtime for m in methods]
        if all(m in previous for m in methods) and saved.stat().st_mtime > max(synthesized):
            return {m: previous[m] for m in methods}
    figures = evaluate_mod.evaluate(config_mod.Dataset(ds.name, ds.cfg, results), methods, **(compare or {}))
    saved.write_text(json.dumps(figures, indent=1, default=str))
    return figures


def summarize(per_seed: dict, methods: list[str]) -> dict:
    """{method: {metric: {"mean", "std", "values"}}} over seeds, for the metrics with values."""
    out = {}
    for method in methods:
        out[method] = {}
        for metric in METRICS:
            values = [per_seed[s][method].get(metric, {}).get("value") for s in per_seed]
            values = [v for v in values if v is not None]
            if values:
                verdicts = [per_seed[s][method][metric].get("vs_baseline", {}).get("verdict") for s in per_seed
                            if metric in per_seed[s][method]]
                out[method][metric] = {"mean": float(np.mean(values)), "values": values,
                                       "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                                       "verdicts": [v for v in verdicts if v]}
    return out


def _cell(entry: dict | None) -> str:
    """mean ± std over seeds, and in how many seeds the paired comparison with the baseline found
    the method significantly better or worse (e.g. "better 3/3, worse 0/3")."""
    if not entry:
        return "n/a"
    digits = 3 if abs(entry["mean"]) < 1 else 2
    cell = f"{entry['mean']:.{digits}f}" + (f" ± {entry['std']:.{digits}f}" if entry["std"] is not None else "")
    verdicts = entry.get("verdicts") or []
    if verdicts:
        counts = [f"{kind} {verdicts.count(kind)}/{len(verdicts)}" for kind in ("better", "worse") if kind in verdicts]
        cell += f" ({', '.join(counts) or f'n.s. {len(verdicts)}/{len(verdicts)}'})"
    return cell


if __name__ == "__main__":
    main()
