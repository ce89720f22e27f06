"""Temporal consistency (paper section 4, evaluation; the "flow warping error" of later work):
how well frame t of a video is predicted by frame t-1 warped with the SOURCE video's flow.

    E_warp = mean over t, over confident pixels p of |x_t(p) - x_{t-1}(p + b_t(p))|

with b_t the backward flow t -> t-1 of the input sequence (the cache's flow_backward) and its
confidence as the mask. A video whose content moves with the scene scores low; flicker and
drifting textures score high. Values are in intensity levels (0..255).
"""

from __future__ import annotations

import numpy as np

from pipeline.flow.warp import warp_next_to_current


def warping_error(frames: list[np.ndarray], backward_flows: np.ndarray, confidences: np.ndarray,
                  threshold: float = 0.5) -> float:
    """frames: T (H, W, 3) uint8; backward_flows (T-1, 2, H, W): index t maps frame t+1 -> t;
    confidences (T-1, H, W) in [0, 1]."""
    errors, weights = 0.0, 0
    for t in range(1, len(frames)):
        predicted = warp_next_to_current(frames[t - 1], backward_flows[t - 1].astype(np.float32))
        mask = confidences[t - 1] > threshold
        if mask.any():
            diff = np.abs(predicted - frames[t].astype(np.float32)).mean(-1)
            errors += float(diff[mask].sum())
            weights += int(mask.sum())
    return errors / max(weights, 1)
