"""Stage 'frames': extract every sequence's frames and write the frame manifest.

    python -m pipeline.frames --dataset demo [--sequences A B ...] [--shard-manifest OUT.csv]

For each sequence it writes ``results/<ds>/frames/<seq>/NNNNNN.png`` (RGB uint8, resized and
cropped as configured) and ``manifest.csv`` beside them (see pipeline/manifest.py), into a temporary
folder that is renamed into place only when the sequence is complete. A sequence already complete
with the same settings is skipped, so a rerun after a failure redoes only what is missing. Bad input
(corrupt video, unreadable or mixed-size images, missing folders) stops with a message naming the
file; sequences finished before it stay.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline import datasets, manifest
from pipeline.atomic import atomic_dir, atomic_file
from pipeline.cli import add_dataset_args, dataset_from_args, relative_to, setup_logging
from pipeline.config import Dataset
from pipeline.errors import InputError, main_guard
from pipeline.images import image_size
from pipeline.video import ffmpeg_exe

STAGE_VERSION = 1
STAMP = "stage.json"


def fingerprint(ds: Dataset, seq: datasets.Sequence) -> str:
    """What a sequence's frames depend on: if it changes, the sequence is extracted again."""
    keys = {k: ds.cfg.get(k) for k in ("adapter", "root", "frames", "generate", "video_extensions")}
    blob = json.dumps({"stage": STAGE_VERSION, "seq": seq.name, "split": seq.split, **keys}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_complete(seq_dir: Path, stamp: str) -> bool:
    try:
        return json.loads((seq_dir / STAMP).read_text())["fingerprint"] == stamp and (seq_dir / "manifest.csv").is_file()
    except (OSError, ValueError, KeyError):
        return False


def extract_sequence(ds: Dataset, seq: datasets.Sequence, ffmpeg: str, log) -> pd.DataFrame:
    seq_dir = ds.results / "frames" / seq.name
    start = time.perf_counter()
    with atomic_dir(seq_dir) as tmp:
        records = datasets.extract(ds, seq, tmp, ffmpeg)
        width, height = image_size(records[0].file)
        rows = [{
            "dataset": ds.name, "seq": seq.name, "split": seq.split, "index": r.index,
            "path": relative_to(seq_dir / r.file.name, ds.results), "timestamp": round(r.timestamp, 6),
            "width": width, "height": height, "annotated": r.annotated, "source": r.source,
            "gt_label": r.gt_label, "gt_instance": r.gt_instance, "gt_flow": r.gt_flow,
        } for r in records]
        table = pd.DataFrame(rows, columns=manifest.COLUMNS)
        table.to_csv(tmp / "manifest.csv", index=False)
        (tmp / STAMP).write_text(json.dumps({"fingerprint": fingerprint(ds, seq), "frames": len(rows)}))
    elapsed = time.perf_counter() - start
    log.info("%s: %d frames %dx%d in %.2fs (%.1f frames/s)", seq.name, len(rows), width, height, elapsed,
             len(rows) / max(elapsed, 1e-9))
    return table


def run(ds: Dataset, config: dict, names: list[str] | None, shard_manifest: Path | None, force: bool) -> pd.DataFrame:
    log = setup_logging()
    all_seqs = {s.name: s for s in datasets.list_sequences(ds)}
    if names:
        unknown = [n for n in names if n not in all_seqs]
        if unknown:
            raise InputError(ds.root, f"unknown sequences {unknown} (the dataset has {len(all_seqs)}, "
                                      f"e.g. {sorted(all_seqs)[:3]})")
        seqs = [all_seqs[n] for n in names]
    else:
        seqs = list(all_seqs.values())
    ffmpeg = ffmpeg_exe(config.get("ffmpeg"))
    tables = []
    for seq in tqdm(seqs, desc=f"frames {ds.name}", unit="seq", disable=len(seqs) < 2):
        seq_dir = ds.results / "frames" / seq.name
        if not force and is_complete(seq_dir, fingerprint(ds, seq)):
            log.info("%s: already extracted with these settings, kept", seq.name)
            tables.append(manifest.read(seq_dir / "manifest.csv"))
        else:
            tables.append(extract_sequence(ds, seq, ffmpeg, log))
    merged = pd.concat(tables, ignore_index=True)
    if shard_manifest:
        manifest.write(merged, shard_manifest)
    return merged


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.frames", description=__doc__.splitlines()[0])
    add_dataset_args(parser)
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
