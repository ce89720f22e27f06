"""'given' annotations: the dataset ships labels, instances or flow, and the stage brings them to
the frames' size and layout (the same resize/crop as the frames, nearest neighbour for maps, flow
vectors scaled with the image), checking them on the way.

Used by the labels, instances and flow stages in mode ``given`` (synthcity's exact ground truth;
any dataset with per-frame annotations).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.core.arrays import NpzRowWriter, NpzRows
from pipeline.core.cityscapes_labels import INSTANCE_DIVISOR, NUM_LABEL_IDS
from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.core.images import fit_geometry, image_size, read_map, resize_map, write_map
from pipeline.datasets import Sequence, manifest, to_label_ids


def sequence_manifest(ds: Dataset, seq: Sequence) -> tuple[pd.DataFrame, Path]:
    path = ds.results / "frames" / seq.name / "manifest.csv"
    table = manifest.read(path)
    expected = list(range(len(table)))
    if table["index"].tolist() != expected:
        missing = sorted(set(expected) - set(table["index"]))
        raise InputError(path, f"frames of {seq.name} are not numbered 0..{len(table) - 1} (missing {missing[:10]})")
    return table, path


def source_to_frames(ds: Dataset, table: pd.DataFrame) -> tuple[float, float, float, float]:
    """(sx, sy, dx, dy): a point in the source's pixels (a video's or an image's) lands at
    (x * sx + dx, y * sy + dy) in the frames the frames stage wrote (resized and cropped)."""
    source = table.source[0]
    path = source.rsplit("#", 1)[0]
    if "#" in source:  # a video's frame
        from pipeline.core.video import ffmpeg_exe, probe

        info = probe(path, ffmpeg_exe(None))
        src_w, src_h = info.width, info.height
    else:
        src_w, src_h = image_size(path)
    new_w, new_h, x0, y0 = fit_geometry(src_w, src_h, ds.settings.frames.size, ds.settings.frames.resize)
    return new_w / src_w, new_h / src_h, -x0, -y0


def _check_labels(values: np.ndarray, path: str) -> None:
    bad = np.unique(values[values >= NUM_LABEL_IDS])
    if bad.size:
        raise InputError(path, f"label values {bad[:10].tolist()} outside the Cityscapes labelIds 0..{NUM_LABEL_IDS - 1}")


def copy_maps(ds: Dataset, seq: Sequence, out_dir: Path, kind: str) -> dict:
    """Write the sequence's given label (kind='label') or instance (kind='instance') maps."""
    table, manifest_path = sequence_manifest(ds, seq)
    column = f"gt_{kind}"
    missing = table[table[column] == ""]["index"].tolist()
    if missing:
        raise InputError(manifest_path, f"{len(missing)} of {len(table)} frames of {seq.name} have no given "
                                        f"{kind} map (first: frame {missing[0]}); mode 'given' needs one per frame")
    size = (int(table.width[0]), int(table.height[0]))
    mode = ds.settings.frames.resize
    for row in table.itertuples():
        if kind == "label":
            values = to_label_ids(ds, read_map(row.gt_label, np.uint8), row.gt_label)
            _check_labels(values, row.gt_label)
            out = resize_map(values, size, mode)
        else:
            values = read_map(row.gt_instance, np.int64)
            _check_labels(np.where(values >= INSTANCE_DIVISOR, values // INSTANCE_DIVISOR, values), row.gt_instance)
            out = resize_map(values.astype(np.uint16), size, mode)
        write_map(out_dir / f"{row.index:06d}.png", out)
    return {"frames": len(table), "width": size[0], "height": size[1]}


def fit_flow(flow: np.ndarray, confidence: np.ndarray, size, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Resize/crop flow (N, 2, h, w) and confidence (N, h, w) like the frames, scaling the vectors."""
    n, _, h, w = flow.shape
    new_w, new_h, x0, y0 = fit_geometry(w, h, size, mode)
    width, height = size if size else (w, h)
    if (new_w, new_h) == (w, h):
        return flow[..., y0 : y0 + height, x0 : x0 + width], confidence[..., y0 : y0 + height, x0 : x0 + width]
    out_flow = np.empty((n, 2, height, width), np.float32)
    out_conf = np.empty((n, height, width), np.float32)
    interpolation = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
    for t in range(n):
        for c, scale in ((0, new_w / w), (1, new_h / h)):
            out_flow[t, c] = cv2.resize(flow[t, c], (new_w, new_h), interpolation=interpolation)[
                y0 : y0 + height, x0 : x0 + width] * scale
        out_conf[t] = cv2.resize(confidence[t].astype(np.float32), (new_w, new_h), interpolation=interpolation)[
            y0 : y0 + height, x0 : x0 + width]
    return out_flow, out_conf


FLOW_CHUNK = 32  # frame pairs read, fitted and written at a time


def copy_flow(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    """Write flow/<seq>/flow.npz from the sequence's given forward and backward flow (their
    validity masks become the confidences), a few frame pairs at a time."""
    table, manifest_path = sequence_manifest(ds, seq)
    sources = table.gt_flow.unique().tolist()
    if sources == [""] or len(sources) != 1:
        raise InputError(manifest_path, f"{seq.name} has no given flow (gt_flow column); mode 'given' needs it")
    needed = len(table) - 1
    size = (int(table.width[0]), int(table.height[0]))
    with FlowWriter(out_dir, needed, size[1], size[0]) as out:
        for key, valid_key in (("flow", "valid"), ("flow_backward", "valid_backward")):
            with NpzRows(sources[0], key) as flows, NpzRows(sources[0], valid_key) as valids:
                if len(flows.shape) != 4 or flows.shape[1] != 2 or flows.shape[0] < needed:
                    raise InputError(sources[0], f"{key} has shape {flows.shape}, expected ({needed}, 2, H, W) for "
                                                 f"{len(table)} frames")
                for (start, flow), (_, valid) in zip(flows.chunks(FLOW_CHUNK), valids.chunks(FLOW_CHUNK)):
                    if start >= needed:
                        break
                    flow, valid = flow[: needed - start], valid[: needed - start]
                    bad = ~np.isfinite(flow).all(axis=(1, 2, 3))
                    if bad.any():
                        raise InputError(sources[0], f"{key} is not finite (NaN/inf) at frame pairs "
                                                     f"{(start + np.nonzero(bad)[0][:10]).tolist()}")
                    out.write_direction(key, start, *fit_flow(flow, valid, size, ds.settings.frames.resize))
    return {"frames": len(table), "pairs": needed, "width": size[0], "height": size[1]}


class FlowWriter:
    """The flow stage's contract, results/<ds>/flow/<seq>/flow.npz: flow [T-1,2,H,W] float16 in
    pixels, t -> t+1, and flow_backward [T-1,2,H,W], t+1 -> t (index t), each with a confidence
    [T-1,1,H,W] in [0,1] (float16); written a few frame pairs at a time, so a long video's flow is
    never in memory whole (pipeline/core/arrays.py NpzRowWriter)."""

    def __init__(self, out_dir: Path, pairs: int, height: int, width: int) -> None:
        flow, confidence = ((pairs, 2, height, width), np.float16), ((pairs, 1, height, width), np.float16)
        self._npz = NpzRowWriter(out_dir / "flow.npz", {"flow": flow, "confidence": confidence, "flow_backward": flow,
                                                        "confidence_backward": confidence}, out_dir / ".flow-scratch")

    def __enter__(self) -> "FlowWriter":
        self._npz.__enter__()
        return self

    def write_direction(self, key: str, start: int, flow: np.ndarray, confidence: np.ndarray) -> None:
        """Pairs ``start..`` of one direction (key 'flow' or 'flow_backward'): flow (N, 2, H, W),
        confidence (N, H, W)."""
        conf_key = "confidence" if key == "flow" else "confidence_backward"
        self._npz.write(key, start, flow.astype(np.float16))
        self._npz.write(conf_key, start, np.clip(confidence, 0, 1).astype(np.float16)[:, None])

    def write(self, start: int, flow: np.ndarray, confidence: np.ndarray, backward: np.ndarray,
              backward_confidence: np.ndarray) -> None:
        """Pairs ``start..`` of both directions."""
        self.write_direction("flow", start, flow, confidence)
        self.write_direction("flow_backward", start, backward, backward_confidence)

    def __exit__(self, *exc) -> None:
        self._npz.__exit__(*exc)

