"""Optical flow with OpenCV's DIS (Kroeger et al. 2016): no weights, runs on the CPU, the offline
default of the flow stage. Forward and backward flow per frame pair, and a confidence from the
forward-backward consistency check (Sundaram et al. 2010): a pixel is consistent when
|f(p) + b(p + f(p))|^2 < 0.01 (|f(p)|^2 + |b(p + f(p))|^2) + 0.5.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.datasets import Sequence, conditions
from pipeline.core.images import read_rgb
from pipeline.datasets.given import FlowWriter, sequence_manifest

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def consistency(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) 1.0 where the forward flow (H, W, 2) and the backward flow at its target agree."""
    h, w = forward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back_at_target = cv2.remap(backward, grid_x + forward[..., 0], grid_y + forward[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    error = np.sum((forward + back_at_target) ** 2, axis=-1)
    bound = 0.01 * (np.sum(forward**2, -1) + np.sum(back_at_target**2, -1)) + 0.5
    inside = ((grid_x + forward[..., 0] >= 0) & (grid_x + forward[..., 0] <= w - 1)
              & (grid_y + forward[..., 1] >= 0) & (grid_y + forward[..., 1] <= h - 1))
    return ((error < bound) & inside).astype(np.float32)


def estimate_pair(dis, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward flow first->second, backward second->first (both (2, H, W)), and their confidences."""
    a, b = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (first, second))
    forward = dis.calc(a, b, None)
    backward = dis.calc(b, a, None)
    return (forward.transpose(2, 0, 1), consistency(forward, backward),
            backward.transpose(2, 0, 1), consistency(backward, forward))


def estimate_sequence(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    """Both flows of every frame pair, read and written pair by pair (a long video's frames and
    flows are never in memory whole)."""
    table, manifest_path = sequence_manifest(ds, seq)
    if len(table) < 2:
        raise InputError(manifest_path, f"{seq.name} has {len(table)} frame(s); flow needs at least 2")
    dis = cv2.DISOpticalFlow_create(PRESETS[ds.settings.flow.preset])
    paths = conditions.frame_paths(ds, seq)  # face / pose: the stage's crops, which the trainer sees
    first = read_rgb(paths[0])
    height, width = first.shape[:2]
    consistent = 0.0
    with FlowWriter(out_dir, len(paths) - 1, height, width) as out:
        for t, path in enumerate(paths[1:]):
            second = read_rgb(path)
            forward, confidence, backward, back_confidence = estimate_pair(dis, first, second)
            if not (np.isfinite(forward).all() and np.isfinite(backward).all()):
                raise InputError(ds.results / "frames" / seq.name, f"DIS produced non-finite flow for frame pair {t}")
            out.write(t, forward[None], confidence[None], backward[None], back_confidence[None])
            consistent += float(confidence.mean())
            first = second
    return {"frames": len(table), "pairs": len(paths) - 1, "width": width, "height": height,
            "consistent": round(consistent / (len(paths) - 1), 4)}
