"""Backward warping by forward flow: sample frame t+1 at p + flow_t(p) to predict frame t.

This is the consistency the paper's flow loss (Eq. 8) and the evaluation's warping error rest on;
the data stages use it to check flow (synthcity's ground truth, estimated flow) against frames.
"""

from __future__ import annotations

import cv2
import numpy as np


def warp_next_to_current(next_frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``next_frame`` (H, W[, C]) at p + flow(p); flow is (2, H, W) in pixels."""
    height, width = flow.shape[1:]
    map_x = (np.arange(width, dtype=np.float32)[None, :] + flow[0]).astype(np.float32)
    map_y = (np.arange(height, dtype=np.float32)[:, None] + flow[1]).astype(np.float32)
    return cv2.remap(next_frame.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def photometric_error(frame: np.ndarray, next_frame: np.ndarray, flow: np.ndarray, valid: np.ndarray) -> float:
    """Mean absolute difference (intensity levels, averaged over channels) on ``valid`` pixels."""
    error = np.abs(warp_next_to_current(next_frame, flow) - frame.astype(np.float32))
    if error.ndim == 3:
        error = error.mean(-1)
    return float(error[valid.astype(bool)].mean())
