"""The frame manifest: one row per extracted frame (pandas, written as CSV).

Columns: dataset, seq, split, index, path (relative to results/<dataset>/), timestamp (s), width,
height, annotated (in the annotated training subset), source (original file or video#frame),
gt_label / gt_instance / gt_flow (ground-truth files where the dataset has them, else empty). The frames_manifest stage
(pipeline/stages/frames_manifest.py) concatenates the per-shard manifests with :func:`concat`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.core.atomic import atomic_file
from pipeline.core.errors import InputError

COLUMNS = ["dataset", "seq", "split", "index", "path", "timestamp", "width", "height", "annotated",
           "source", "gt_label", "gt_instance", "gt_flow"]


def read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "manifest does not exist")
    try:
        frame = pd.read_csv(path, dtype={"seq": str, "gt_label": str, "gt_instance": str, "gt_flow": str},
                            keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot parse manifest ({err})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, f"manifest lacks columns {missing}")
    return frame[COLUMNS]


def frame_rates(path: str | Path) -> dict[str, float]:
    """Each sequence's frame rate (frames per second) from its frames' timestamps: the video's own
    rate (or frames.fps) for a video dataset, frames.sequence_fps for image sequences. A sequence
    of one frame has none."""
    rates = {}
    for seq, rows in read(path).groupby("seq", sort=False):
        steps = rows.sort_values("index")["timestamp"].astype(float).diff().dropna()
        steps = steps[steps > 0]
        if len(steps):
            rates[seq] = round(1.0 / float(steps.median()), 3)
    return rates


def add_rate_args(parser) -> None:
    """--fps and --manifest of the CLIs that write videos (synthesize, covst, side_by_side)."""
    parser.add_argument("--manifest", type=Path, help="the frame manifest: each video at its sequence's own rate")
    parser.add_argument("--fps", type=float, default=17.0, help="the rate of a sequence the manifest has none for")


def rates_from_args(args) -> dict[str, float]:
    return frame_rates(args.manifest) if args.manifest else {}


def write(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        frame[COLUMNS].to_csv(tmp, index=False)


def concat(inputs: list[str | Path]) -> pd.DataFrame:
    frames = [read(p) for p in inputs]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    duplicated = merged.drop_duplicates(["seq", "index"]).shape[0] != merged.shape[0]
    if duplicated:
        seqs = merged[merged.duplicated(["seq", "index"])]["seq"].unique().tolist()
        raise InputError(inputs[0], f"sequences {seqs[:5]} appear in more than one shard manifest")
    return merged.sort_values(["seq", "index"], kind="stable").reset_index(drop=True)


def annotated_rows(ds, split: str) -> pd.DataFrame:
    """The annotated frames (with a label file) of a split of dataset ``ds``, from the frames stage's
    manifests: what the segmenter and the Mask R-CNN train and are scored on."""
    from pipeline import datasets

    seqs = [seq for seq in datasets.list_sequences(ds) if seq.split == split]
    if not seqs:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat([read(ds.results / "frames" / seq.name / "manifest.csv") for seq in seqs])
    rows = table[table.annotated.astype(str).isin(["True", "true", "1"]) & (table.gt_label != "")]
    return rows.reset_index(drop=True)
