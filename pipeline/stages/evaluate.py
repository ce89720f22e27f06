"""Stage 'evaluate': compare the synthesized videos of several runs on a dataset's val sequences.

    python -m pipeline.stages.evaluate --dataset demo --methods frame_by_frame covst vid2vid \
        --baseline frame_by_frame --skip-first 2 --evaluator results/demo_evaluator/segmenter/model.pt \
        --output results/demo/fid.json

Reads each run's ``synth/<run>/`` frames and the dataset's cache (real frames and the source
backward flow), and writes ``fid.json`` (per method: every metric with its value, extractor,
weights hash, counts and resolution, its bootstrap spread and, for every method but the baseline,
its paired comparison with the baseline; plus run metadata), ``metrics.csv`` and ``metrics.png``
beside it. Every frame after the first ``--skip-first`` of each clip is scored (the first frames
are the single-image generator's, the same for vid2vid and frame_by_frame).

Metrics (registry: pipeline/metrics/__init__.py; docs/evaluation.md): temporal consistency (the
flow-warping error with the source flow; the real videos' own error is the floor), PSNR and SSIM
against the real frames; segmentation consistency: the dataset's segmenter (the one the labels
stage ran) on the synthesized frames, mIoU against the input labels, beside the same segmenter on
the real frames; realism: the Fréchet distance and the unbiased KID of the evaluator network's
pooled features (``--evaluator``: a DeepLabV3 trained apart from the one that made the labels; a
stand-in, not Inception), and two statistics that need no network: the per-class CIE Lab colour
distance and the radially averaged power spectrum distance (pipeline/metrics/appearance.py); face
and pose consistency with dlib and MediaPipe where the task has them; and the FID family with
its real weights only (image FID, FVD, the paper's video FIDs, each with its KID), the real
videos' features cached under results/<ds>/fid_stats/ by extractor and cache fingerprint;
offline they are recorded as unavailable with the file to put where.

Every value comes with its spread (a bootstrap over the clips, pipeline/metrics/spread.py), and
every method's difference from the baseline with a paired bootstrap over the same clips: its
95% interval, and the verdict better / worse / no significant difference.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_file
from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard
from pipeline.metrics import METRICS
from pipeline.metrics.scoring import (
    UNAVAILABLE,
    Scored,
    SegmenterReference,
    appearance_scores,
    entries,
    evaluator_scores,
    face_scores,
    feature_scores,
    load_evaluator,
    method_frames,
    pixel_scores,
    pose_scores,
    real_sequences,
    run_metadata,
    segmenter_reference,
    segmenter_scores,
)
from pipeline.metrics.temporal import warping_error

log = logging.getLogger("pipeline.stages.evaluate")


def after_first_frames(real: dict, skip: int) -> dict:
    """The real clips from frame ``skip`` on (frames, and the flows between those frames)."""
    return {seq: (frames[skip:], back[skip:], conf[skip:]) for seq, (frames, back, conf) in real.items()}


def evaluate(ds, methods: list[str], split: str = "val", baseline: str | None = None, skip_first: int = 0,
             evaluator: Path | None = None, mediapipe: str | None = None) -> dict:
    """Every metric of every method on the ``split`` clips of the cache, from frame ``skip_first``
    on (the first frames come from the single-image generator): {method: {metric: entry}}, each
    entry of a method but ``baseline`` (default: the first method) with its paired comparison
    with the baseline's over the same clips (``vs_baseline``)."""
    real, fingerprint = real_sequences(ds, split)
    if not real:
        raise InputError(ds.results / "cache", f"no {split} sequences in the cache")
    shortest = min(len(f) for f, _, _ in real.values())
    if shortest <= skip_first + 1:
        raise InputError(ds.results / "cache", f"the {split} sequences' shortest has {shortest} frames: nothing to "
                                               f"score after the first {skip_first}")
    fakes = {m: [method_frames(ds, m, seq, f)[skip_first:] for seq, (f, _, _) in sorted(real.items())] for m in methods}
    real = after_first_frames(dict(sorted(real.items())), skip_first)
    any_seq = next(iter(real.values()))[0]
    resolution = [int(any_seq.shape[2]), int(any_seq.shape[1])]
    log.info("%d %s clips, %d frames each scored from frame %d, cache fingerprint %s", len(real), split,
             len(any_seq), skip_first, fingerprint[:12])
    floor = np.mean([warping_error(list(f), b, c) for f, b, c in real.values()])
    reference = segmenter_reference(ds, real, split, fingerprint, skip_first)
    realism = load_evaluator(evaluator, real, ds, split, fingerprint, f"from{skip_first}") if evaluator else None
    features = feature_scores(ds, real, fakes, split, fingerprint)
    shared = {"clips": len(real), "resolution": resolution, "first_frame_scored": skip_first}
    task = ds.settings.task  # the face and pose tasks' consistency, with the networks that ship offline
    consistency = (face_scores(ds, real, fakes, skip_first, shared) if task == "face" else
                   pose_scores(ds, real, fakes, skip_first, shared, mediapipe) if task == "pose" else {})
    scores: dict[str, dict[str, Scored]] = {}
    for method in methods:
        log.info("%s: scoring %d frames", method, sum(len(f) for f in fakes[method]))
        counts = {"clips": len(real), "frames": int(sum(len(f) for f in fakes[method])), "resolution": resolution,
                  "first_frame_scored": skip_first}
        found = pixel_scores(fakes[method], real, floor, counts)
        labels = None
        if isinstance(reference, SegmenterReference):
            found.update(segmenter_scores(reference, ds, fakes[method], real, counts))
            labels = reference.truth
        else:
            found["segmentation_miou"] = Scored({"value": None, "available": False, "reason": reference})
        found.update(appearance_scores(fakes[method], real, labels, counts))
        if realism is not None:
            found.update(evaluator_scores(realism, fakes[method], counts))
        else:
            reason = "no evaluator network (evaluate.evaluator names a dataset whose trained DeepLabV3 gives the features)"
            for name in ("image_fid_segmenter_standin", "image_kid_segmenter_standin"):
                found[name] = Scored({"value": None, "available": False, "reason": reason})
        for name, scored in {**features[method], **consistency.get(method, {})}.items():
            scored.entry.update(counts)
            found[name] = scored
        for name, reason in UNAVAILABLE.items():
            found[name] = Scored({"value": None, "available": False, "reason": reason})
        scores[method] = found
    return compare_with_baseline(scores, baseline or methods[0])


def compare_with_baseline(scores: dict[str, dict[str, Scored]], baseline: str) -> dict:
    """The methods' entries, each (but the baseline's) with ``vs_baseline``: the paired bootstrap of
    its value minus the baseline's over the same clips, and whether that difference is significant
    and better or worse (the metric's direction)."""
    if baseline not in scores:
        raise InputError("--baseline", f"{baseline!r} is not one of the evaluated methods {sorted(scores)}")
    results = {}
    for method, found in scores.items():
        results[method] = entries(found)
        if method == baseline:
            continue
        for name, scored in found.items():
            paired = scored.compared_with(scores[baseline].get(name, Scored({})))
            if paired is None:
                continue
            lower = METRICS[name].lower_is_better
            better = paired["difference"] < 0 if lower else paired["difference"] > 0
            verdict = ("better" if better else "worse") if paired["significant"] else "no significant difference"
            scored.entry["vs_baseline"] = {"baseline": baseline, **paired, "verdict": verdict}
    return results


def write_outputs(results: dict, metadata: dict, output: Path, csv: Path | None = None,
                  plot: Path | None = None) -> None:
    """output (JSON), csv (default metrics.csv beside it), plot (default metrics.png beside it)."""
    csv = csv or output.with_name("metrics.csv")
    plot = plot or output.with_name("metrics.png")
    unknown = sorted({k for metrics in results.values() for k in metrics} - set(METRICS))
    if unknown:  # every reported metric is registered, so the table and the plot cannot miss one
        raise ValueError(f"metrics {unknown} are not in pipeline.metrics.METRICS")
    with atomic_file(output) as tmp:
        tmp.write_text(json.dumps({"metadata": metadata, "methods": results}, indent=1))
    rows = []
    for m, metrics in results.items():
        for k, v in metrics.items():
            paired = v.get("vs_baseline") or {}
            rows.append({"method": m, "metric": k, "direction": METRICS[k].direction, "value": v.get("value"),
                         "std": (v.get("spread") or {}).get("std"), "available": v.get("available", True),
                         "baseline": paired.get("baseline"), "difference": paired.get("difference"),
                         "difference_low": paired.get("low"), "difference_high": paired.get("high"),
                         "verdict": paired.get("verdict")})
    table = pd.DataFrame(rows)
    with atomic_file(csv) as tmp:
        table.to_csv(tmp, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [k for k in METRICS if any(results[m].get(k, {}).get("value") is not None for m in results)]
    columns = min(len(shown), 6)
    fig, axes = plt.subplots(-(-len(shown) // columns), columns, figsize=(max(3.2, 1.0 * len(results)) * columns,
                                                                       3.4 * -(-len(shown) // columns)), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    axes = axes.flat
    marks = {"better": "+", "worse": "-"}  # a significant paired difference from the baseline
    for ax, metric in zip(np.atleast_1d(axes), shown):
        values = [results[m].get(metric, {}).get("value") or 0.0 for m in results]
        errors = [(results[m].get(metric, {}).get("spread") or {}).get("std") or 0.0 for m in results]
        bars = ax.bar(list(results), values, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(values))])
        for bar, m in zip(bars, results):
            mark = marks.get((results[m].get(metric, {}).get("vs_baseline") or {}).get("verdict"))
            if mark:
                ax.annotate(mark, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                            fontsize=11, fontweight="bold")
        ax.set_title(f"{metric}\n({METRICS[metric].direction} is better)", fontsize=8)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    with atomic_file(plot) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.evaluate", __doc__)
    add_dataset_args(parser)
    parser.add_argument("--methods", nargs="+", required=True, help="runs whose synth/<run>/ to compare")
    parser.add_argument("--split", default="val", help="the split whose sequences are read (default: %(default)s)")
    parser.add_argument("--output", type=Path, required=True, help="the JSON (e.g. fid.json)")
    parser.add_argument("--csv", type=Path, help="the table (default: metrics.csv beside --output)")
    parser.add_argument("--plot", type=Path, help="the plot (default: metrics.png beside --output)")
    parser.add_argument("--baseline", help="the method every other is compared with, clip by clip (default: the "
                                           "first of --methods)")
    parser.add_argument("--skip-first", type=int, default=0, help="frames at the start of each clip left out of "
                        "every score (the first frames, made by the single-image generator; default %(default)s)")
    parser.add_argument("--evaluator", type=Path, help="a trained DeepLabV3 (model.pt) apart from the one that made "
                        "the input labels: its features give the stand-in FID and KID (default: none)")
    parser.add_argument("--mediapipe-python", help="task pose: MediaPipe's environment's python, for pose consistency "
                        "(default: envs/mediapipe/bin/python)")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    results = evaluate(ds, args.methods, args.split, args.baseline, args.skip_first, args.evaluator,
                       args.mediapipe_python)
    write_outputs(results, run_metadata(ds, "pipeline.stages.evaluate"), args.output, args.csv, args.plot)
    for method, metrics in results.items():
        log.info("%s: warping error %.2f (real %.2f), PSNR %.2f, SSIM %.3f", method,
                 metrics["temporal_warping_error"]["value"], metrics["temporal_warping_error"]["real_videos_value"],
                 metrics["psnr"]["value"], metrics["ssim"]["value"])


if __name__ == "__main__":
    main()
