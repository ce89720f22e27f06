"""Stage 'frames': extract every sequence's frames and write the frame manifest.

    python -m pipeline.stages.frames --dataset demo [--sequences A B ...] [--shard-manifest OUT.csv]

For each sequence it writes ``results/<ds>/frames/<seq>/NNNNNN.png`` (RGB uint8, resized and
cropped as configured) and ``manifest.csv`` beside them (see pipeline/datasets/manifest.py), into a temporary
folder that is renamed into place only when the sequence is complete. A video's frames with decode
errors (pipeline/core/video.py) are counted and listed in the sequence's summary (stage.json) and
logged as a warning; a larger share of them than ``frames.max_decode_errors`` stops the stage.
A sequence already complete with the same settings is skipped, so a rerun after a failure redoes
only what is missing. Bad input (corrupt video, unreadable or mixed-size images, missing folders)
stops with a message naming the file; sequences finished before it stay.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline import datasets
from pipeline.core.cli import (
    add_dataset_args,
    dataset_from_args,
    relative_to,
    setup_logging,
)
from pipeline.core.cli_help import cli_parser
from pipeline.core.config import Dataset
from pipeline.core.errors import main_guard
from pipeline.core.images import image_size
from pipeline.core.stage import frames_listed, run_sequences
from pipeline.core.video import ffmpeg_exe
from pipeline.datasets import manifest

STAGE_VERSION = 1
log = logging.getLogger("pipeline.frames")


def settings(ds: Dataset) -> dict:
    """What a sequence's frames depend on: if it changes, the sequence is extracted again."""
    keys = ("adapter", "root", "frames", "generate", "video_extensions")
    return {"version": STAGE_VERSION, **{k: ds.cfg.get(k) for k in keys}}


def decode_summary(ds: Dataset, records: list[datasets.FrameRecord]) -> dict:
    """The frames with decode errors, their count and, where there are any, the warning."""
    damaged = [r.index for r in records if r.decode_error]
    summary = {"decode_errors": len(damaged), "decode_error_frames": damaged}
    if damaged:
        summary["warnings"] = [f"ffmpeg reports decode errors in {frames_listed(damaged, len(records))}; they may show "
                               "damage (blocks, smears), and so may the frames after each up to the next keyframe "
                               f"(tolerated: {ds.config_key}.frames.max_decode_errors is "
                               f"{ds.settings.frames.max_decode_errors:.1%})"]
    return summary


def run(ds: Dataset, config: dict, names: list[str] | None, shard_manifest: Path | None, force: bool) -> pd.DataFrame:
    setup_logging()
    listed = datasets.list_sequences(ds)  # once: for a folder of videos it walks the whole root
    seqs = datasets.select(ds, names, listed)
    per_split = Counter(s.split for s in listed)
    log.info("%s (adapter %s, %s): %d sequences (%s); this job: %d", ds.name, ds.settings.adapter, ds.root,
             sum(per_split.values()), ", ".join(f"{split} {n}" for split, n in sorted(per_split.items())), len(seqs))
    ffmpeg = ffmpeg_exe(config.get("ffmpeg")) if ds.settings.adapter == "video" else None  # image trees need none

    def extract(seq: datasets.Sequence, tmp: Path) -> dict:
        records = datasets.extract(ds, seq, tmp, ffmpeg)
        width, height = image_size(records[0].file)
        seq_dir = ds.results / "frames" / seq.name
        rows = [{
            "dataset": ds.name, "seq": seq.name, "split": seq.split, "index": r.index,
            "path": relative_to(seq_dir / r.file.name, ds.results), "timestamp": round(r.timestamp, 6),
            "width": width, "height": height, "annotated": r.annotated, "source": r.source,
            "gt_label": r.gt_label, "gt_instance": r.gt_instance, "gt_flow": r.gt_flow,
        } for r in records]
        pd.DataFrame(rows, columns=manifest.COLUMNS).to_csv(tmp / "manifest.csv", index=False)
        return {"frames": len(rows), "width": width, "height": height, **decode_summary(ds, records)}

    run_sequences("frames", ds, seqs, lambda seq: settings(ds), extract, force)
    merged = pd.concat([manifest.read(ds.results / "frames" / s.name / "manifest.csv") for s in seqs],
                       ignore_index=True)
    if shard_manifest:
        manifest.write(merged, shard_manifest)
    return merged


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.frames", __doc__)
    add_dataset_args(parser, ffmpeg=True)
    parser.add_argument("--sequences", nargs="+", help="sequence names (default: all of the dataset)")
    parser.add_argument("--shard-manifest", type=Path, help="write these sequences' manifest here")
    parser.add_argument("--manifest", type=Path, help="write the manifest of all extracted sequences here")
    parser.add_argument("--force", action="store_true", help="extract again even if complete")
    args = parser.parse_args(argv)
    ds, config = dataset_from_args(args)
    table = run(ds, config, args.sequences, args.shard_manifest, args.force)
    if args.manifest:
        manifest.write(table, args.manifest)


if __name__ == "__main__":
    main()
