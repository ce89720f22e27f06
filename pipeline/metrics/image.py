"""Per-frame fidelity against the real frames where they exist: PSNR and SSIM (scikit-image)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(fake: np.ndarray, real: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(real, fake, data_range=255))


def ssim(fake: np.ndarray, real: np.ndarray) -> float:
    return float(structural_similarity(real, fake, channel_axis=-1, data_range=255))
