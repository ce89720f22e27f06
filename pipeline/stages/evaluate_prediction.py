"""Stage 'evaluate_prediction': score future video prediction (paper section 4, Table 3) against the
real future frames, overall and per predicted frame (how quality decays with the horizon).

    python -m pipeline.stages.evaluate_prediction --dataset demo --methods vid2vid repeat flow_extrapolate \
        --observed 4 --predicted 8 --output results/demo/prediction/fid.json

Reads ``results/<ds>/prediction/synth/<method>/<seq>/`` (the predict stage's frames: the sequence's
frames ``observed`` .. ``observed + predicted - 1``) and scores them with the evaluation stage's
metrics (pipeline/metrics/scoring.py, as pipeline/stages/evaluate.py) on that window of the real val clips: the temporal warping
error, PSNR, SSIM, segmentation consistency (against the labels stage's maps of the real future
frames) and, offline, the segmenter stand-in FID (real features: every frame of the val clips);
each with its bootstrap spread over clips. Per predicted frame index: PSNR, SSIM and segmentation
mIoU. Writes the JSON, ``prediction.csv`` (method, frame index or 'all', metric, value, std),
``prediction.png`` (the per-index curves), with ``--sheet`` a contact sheet of the first sequence
(one row per predicted frame: the last observed frame | real | each method) and with ``--videos``
a side-by-side video of each sequence (real | each method, observed frames then predicted).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_file
from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_rgb, titled
from pipeline.core.synthesized import method_frame_files
from pipeline.metrics import scoring
from pipeline.metrics.image import psnr, ssim
from pipeline.metrics.temporal import warping_error

log = logging.getLogger("pipeline.stages.evaluate_prediction")
PER_FRAME = ("psnr", "ssim", "segmentation_miou")


def _window(real: dict, observed: int, predicted: int, cache: Path) -> dict:
    """The real clips cut to the predicted frames (and the flows between them)."""
    frames_at, flows_at = slice(observed, observed + predicted), slice(observed, observed + predicted - 1)
    cut = {}
    for seq, (frames, back, conf) in real.items():
        if len(frames) < observed + predicted:
            raise InputError(cache, f"sequence {seq} has {len(frames)} frames; prediction observes {observed} "
                                    f"and scores the next {predicted}")
        cut[seq] = (frames[frames_at], back[flows_at], conf[flows_at])
    return cut


def _per_frame(fakes: list[np.ndarray], real: dict, confusions: list[list[np.ndarray]] | None) -> dict[str, list[dict]]:
    """PSNR, SSIM (mean over clips, bootstrap spread) and, from ``confusions`` (per clip, per frame),
    the segmentation mIoU of each predicted frame index."""
    from pipeline.metrics.spread import bootstrap
    from pipeline.segmentation.predict import mean_iou

    reals = [frames for frames, _, _ in real.values()]
    out = {name: [] for name in PER_FRAME}
    for k in range(len(reals[0])):
        for name, metric in (("psnr", psnr), ("ssim", ssim)):
            value, spread = scoring.mean_entry([np.array([metric(f[k], r[k])]) for f, r in zip(fakes, reals)])
            out[name].append({"value": value, "spread": spread})
        if confusions is not None:
            matrices = [clip[k] for clip in confusions]
            out["segmentation_miou"].append({"value": mean_iou(sum(matrices)),
                                             "spread": bootstrap(matrices, lambda parts: mean_iou(sum(parts)))})
    return {k: v for k, v in out.items() if v}


def evaluate_prediction(ds, methods: list[str], observed: int, predicted: int, split: str = "val",
                        root: Path | None = None, sequences: tuple[dict, str] | None = None,
                        evaluator: Path | None = None) -> dict:
    """{method: {"all": {metric: entry}, "per_frame": {metric: [entry per predicted frame]}}}; the
    methods' frames under ``root`` (default ``results/<ds>/prediction/synth``); ``sequences``: the
    split's real sequences and their fingerprint when read already (scoring.real_sequences);
    ``evaluator``: the realism evaluator's checkpoint (its stand-in FID and KID)."""
    real, fingerprint = sequences or scoring.real_sequences(ds, split)
    real = dict(sorted(real.items()))
    if not real:
        raise InputError(ds.results / "cache", f"no {split} sequences in the cache")
    reference = scoring.segmenter_reference(ds, real, split, fingerprint)
    window = _window(real, observed, predicted, ds.results / "cache")
    if isinstance(reference, scoring.SegmenterReference):
        reference = dataclasses.replace(
            reference, truth={seq: t[observed:observed + predicted] for seq, t in reference.truth.items()})
    else:
        log.warning("no segmentation metrics: %s", reference)
        reference = None
    floor = np.mean([warping_error(list(f), b, c) for f, b, c in window.values()])
    realism = (scoring.load_evaluator(evaluator, window, ds, split, fingerprint, f"window{observed}-{predicted}")
               if evaluator else None)
    root = root or ds.results / "prediction" / "synth"
    any_clip = next(iter(window.values()))[0]
    results = {}
    for method in methods:
        fakes = [np.stack([read_rgb(p) for p in method_frame_files(ds, method, seq, predicted, root)])
                 for seq in window]
        if fakes[0].shape != any_clip.shape:
            raise InputError(root / method, f"frames are {fakes[0].shape[2]}x{fakes[0].shape[1]}, the real ones "
                                             f"{any_clip.shape[2]}x{any_clip.shape[1]}")
        counts = {"clips": len(window), "frames": int(sum(len(f) for f in fakes)),
                  "resolution": [int(any_clip.shape[2]), int(any_clip.shape[1])], "observed": observed}
        overall = scoring.pixel_metrics(fakes, window, floor, counts)
        confusions = None
        if reference is not None:  # the segmenter runs once per frame: per-frame and overall scores share it
            confusions = [scoring.frame_confusions(ds, reference.model, list(fake), reference.truth[seq])
                          for fake, seq in zip(fakes, window)]
            overall.update(scoring.segmenter_metrics(reference, ds, fakes, window, counts,
                                                     [sum(clip) for clip in confusions]))
        overall.update(scoring.entries(scoring.appearance_scores(fakes, window, reference.truth if reference else None,
                                                                 counts)))
        if realism is not None:
            overall.update(scoring.entries(scoring.evaluator_scores(realism, fakes, counts)))
        results[method] = {"all": overall, "per_frame": _per_frame(fakes, window, confusions)}
        log.info("%s: PSNR %.2f, SSIM %.3f over %d predicted frames", method, overall["psnr"]["value"],
                 overall["ssim"]["value"], counts["frames"])
    return results


def write_outputs(results: dict, metadata: dict, output: Path, csv: Path, plot: Path) -> None:
    with atomic_file(output) as tmp:
        tmp.write_text(json.dumps({"metadata": metadata, "methods": results}, indent=1))
    rows = []
    for method, entry in results.items():
        for metric, value in entry["all"].items():
            rows.append({"method": method, "frame": "all", "metric": metric, "value": value.get("value"),
                         "std": (value.get("spread") or {}).get("std")})
        for metric, values in entry["per_frame"].items():
            rows += [{"method": method, "frame": k + 1, "metric": metric, "value": v["value"],
                      "std": (v["spread"] or {}).get("std")} for k, v in enumerate(values)]
    with atomic_file(csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in PER_FRAME if any(m in e["per_frame"] for e in results.values())]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), shown):
        for i, (method, entry) in enumerate(results.items()):
            values = entry["per_frame"][metric]
            mean = np.array([v["value"] for v in values])
            std = np.array([(v["spread"] or {}).get("std") or 0.0 for v in values])  # none from one clip
            steps = np.arange(1, len(values) + 1)
            ax.plot(steps, mean, marker="o", ms=3, label=method, color=f"C{i}")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.15, color=f"C{i}")
        ax.set_title(f"{metric} per predicted frame (higher is better)", fontsize=9)
        ax.set_xlabel("frames after the last observed one")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(plot) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_sheet(ds, methods: list[str], observed: int, predicted: int, output: Path, real: dict,
                root: Path | None = None) -> Path:
    """The first sequence of ``real`` (scoring.real_sequences): a row per predicted frame, last
    observed frame | real | each method."""
    seq = min(real)
    frames = real[seq][0]
    root = root or ds.results / "prediction" / "synth"
    files = {m: method_frame_files(ds, m, seq, predicted, root) for m in methods}
    rows = []
    for k in range(predicted):
        tiles = [titled(frames[observed - 1], f"observed (frame {observed - 1})"),
                 titled(frames[observed + k], f"real (frame {observed + k})")]
        tiles += [titled(read_rgb(files[m][k]), m) for m in methods]
        rows.append(np.concatenate(tiles, axis=1))
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(output) as tmp:
        _, encoded = cv2.imencode(output.suffix or ".png", cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
        tmp.write_bytes(encoded.tobytes())
    return output


def write_videos(ds, methods: list[str], observed: int, predicted: int, folder: Path, real: dict,
                 root: Path | None = None, fps: float = 17.0) -> list[Path]:
    """Per sequence of ``real`` ``folder/<seq>.mp4``: the observed frames, then the predicted ones,
    side by side: real | each method (a method's column shows the real frames while they are observed)."""
    from model.synthesis import Mp4Writer

    root = root or ds.results / "prediction" / "synth"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for seq in sorted(real):
        frames = real[seq][0]
        files = {m: method_frame_files(ds, m, seq, predicted, root) for m in methods}
        with Mp4Writer(folder / f"{seq}.mp4", fps) as video:
            for t in range(observed + predicted):
                status = "observed" if t < observed else f"predicted +{t - observed + 1}"
                tiles = [titled(frames[t], f"real, frame {t} ({status})")]
                tiles += [titled(frames[t] if t < observed else read_rgb(files[m][t - observed]), m) for m in methods]
                video.write(np.concatenate(tiles, axis=1))
        written.append(folder / f"{seq}.mp4")
    return written


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.evaluate_prediction", __doc__)
    add_dataset_args(parser)
    parser.add_argument("--methods", nargs="+", required=True, help="the prediction methods compared (prediction.methods)")
    parser.add_argument("--observed", type=int, required=True, help="frames each method was given")
    parser.add_argument("--predicted", type=int, required=True, help="frames each method predicted after them")
    parser.add_argument("--split", default="val", help="the split whose sequences are read (default: %(default)s)")
    parser.add_argument("--output", type=Path, required=True, help="the JSON (results/<ds>/prediction/fid.json)")
    parser.add_argument("--csv", type=Path, help="default: prediction.csv beside --output")
    parser.add_argument("--plot", type=Path, help="default: prediction.png beside --output")
    parser.add_argument("--sheet", type=Path, help="also write the contact sheet here")
    parser.add_argument("--videos", type=Path, help="also write the side-by-side videos into this folder")
    parser.add_argument("--synth-root", type=Path, help="the methods' folders (default: <results>/<ds>/prediction/synth)")
    parser.add_argument("--evaluator", type=Path, help="a trained DeepLabV3 (model.pt) apart from the one that made "
                        "the input labels: its features give the stand-in FID and KID (default: none)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    sequences = scoring.real_sequences(ds, args.split)  # read once: scores, sheet and videos
    results = evaluate_prediction(ds, args.methods, args.observed, args.predicted, args.split, args.synth_root,
                                  sequences, args.evaluator)
    write_outputs(results, scoring.run_metadata(ds, "pipeline.stages.evaluate_prediction"), args.output,
                  args.csv or args.output.with_name("prediction.csv"), args.plot or args.output.with_name("prediction.png"))
    if args.sheet:
        write_sheet(ds, args.methods, args.observed, args.predicted, args.sheet, sequences[0], args.synth_root)
    if args.videos:
        write_videos(ds, args.methods, args.observed, args.predicted, args.videos, sequences[0], args.synth_root)


if __name__ == "__main__":
    main()
