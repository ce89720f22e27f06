"""Stage 'evaluate': compare the synthesized videos of several runs on a dataset's val sequences.

    python -m pipeline.stages.evaluate --dataset demo --methods vid2vid frame_by_frame \
        --output results/demo/fid.json

Reads each run's ``synth/<run>/`` frames and the dataset's cache (real frames and the source
backward flow), and writes ``fid.json`` (per method: every metric with its value, extractor,
weights hash, counts and resolution, plus run metadata), ``metrics.csv`` and ``metrics.png``
beside it.

Metrics computed now: temporal consistency (flow-warping error with the source flow,
pipeline/metrics/temporal.py; the real videos' own error is reported as the floor), PSNR and SSIM
against the real frames (pipeline/metrics/image.py), and segmentation consistency: the dataset's
segmenter (the one the labels stage ran, at its scales / flip: mode ``train``'s DeepLabV3, or the
pretrained mmseg DeepLabV3 when its weights are present) on the synthesized frames, mIoU against the input labels,
beside the same segmenter on the real frames; and the Frechet distances of the FID family
(pipeline/metrics/extractors.py, pipeline/metrics/frechet.py): image FID (FID Inception, pool3),
FVD (I3D, every 16-frame window), the paper's video FIDs with I3D (whole val videos) and with
3D-ResNeXt-101 (every 16-frame window), the real videos' features cached per dataset, extractor
and cache fingerprint under results/<ds>/fid_stats/ (a rebuilt cache gets new ones). Each runs only with its real weights (verified where a digest is
published); without them (offline) the metric is recorded as unavailable with the reason, which
says which file to put where. Offline, where the labels came from the dataset's own trained
DeepLabV3, ``image_fid_segmenter_standin`` gives a Frechet distance over that network's pooled
backbone features instead, clearly named as a stand-in (not comparable with published FIDs).
No number is ever reported from an extractor without its real weights.

Every metric comes with its spread: a bootstrap over the evaluated clips (pipeline/metrics/spread.py;
a Fréchet distance refitted on each resample), its standard deviation and 95% interval.
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
    SegmenterReference,
    feature_metrics,
    method_frames,
    pixel_metrics,
    real_sequences,
    run_metadata,
    segmenter_metrics,
    segmenter_reference,
)
from pipeline.metrics.temporal import warping_error

log = logging.getLogger("pipeline.stages.evaluate")


def evaluate(ds, methods: list[str], split: str = "val") -> dict:
    """Every metric of every method on the ``split`` clips of the cache: {method: {metric: entry}}."""
    real, fingerprint = real_sequences(ds, split)
    real = dict(sorted(real.items()))
    if not real:
        raise InputError(ds.results / "cache", f"no {split} sequences in the cache")
    any_seq = next(iter(real.values()))[0]
    resolution = [int(any_seq.shape[2]), int(any_seq.shape[1])]
    log.info("%d %s clips of %d frames, cache fingerprint %s", len(real), split, len(any_seq), fingerprint[:12])
    floor = np.mean([warping_error(list(f), b, c) for f, b, c in real.values()])
    reference = segmenter_reference(ds, real, split, fingerprint)
    # every synthesized video is read once; each metric family below uses these arrays
    fakes = {m: [method_frames(ds, m, seq, f) for seq, (f, _, _) in real.items()] for m in methods}
    features = feature_metrics(ds, real, fakes, split, fingerprint)
    results = {}
    for method in methods:
        log.info("%s: scoring %d frames", method, sum(len(f) for f in fakes[method]))
        counts = {"clips": len(real), "frames": int(sum(len(f) for f in fakes[method])), "resolution": resolution}
        metrics = pixel_metrics(fakes[method], real, floor, counts)
        if isinstance(reference, SegmenterReference):
            metrics.update(segmenter_metrics(reference, ds, fakes[method], real, counts))
        else:
            metrics["segmentation_miou"] = {"value": None, "available": False, "reason": reference}
        for name, entry in features[method].items():
            metrics[name] = {**entry, **counts}
        for name, reason in UNAVAILABLE.items():
            metrics[name] = {"value": None, "available": False, "reason": reason}
        results[method] = metrics
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
    rows = [{"method": m, "metric": k, "value": v.get("value"), "std": (v.get("spread") or {}).get("std"),
             "available": v.get("available", True)}
            for m, metrics in results.items() for k, v in metrics.items()]
    table = pd.DataFrame(rows)
    with atomic_file(csv) as tmp:
        table.to_csv(tmp, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [k for k in METRICS if any(results[m].get(k, {}).get("value") is not None for m in results)]
    fig, axes = plt.subplots(1, len(shown), figsize=(max(4, 1.2 * len(results)) * len(shown), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), shown):
        values = [results[m].get(metric, {}).get("value") or 0.0 for m in results]
        errors = [(results[m].get(metric, {}).get("spread") or {}).get("std") or 0.0 for m in results]
        ax.bar(list(results), values, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(values))])
        ax.set_title(f"{metric} ({METRICS[metric].direction} is better)", fontsize=9)
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
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    results = evaluate(ds, args.methods, args.split)
    write_outputs(results, run_metadata(ds, "pipeline.stages.evaluate"), args.output, args.csv, args.plot)
    for method, metrics in results.items():
        log.info("%s: warping error %.2f (real %.2f), PSNR %.2f, SSIM %.3f", method,
                 metrics["temporal_warping_error"]["value"], metrics["temporal_warping_error"]["real_videos_value"],
                 metrics["psnr"]["value"], metrics["ssim"]["value"])


if __name__ == "__main__":
    main()
