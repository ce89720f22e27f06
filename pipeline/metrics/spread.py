"""The spread of a metric over the evaluated clips: a bootstrap over clips (Efron 1979).

Each resample draws as many clips as were evaluated, with replacement, and recomputes the metric
from their per-clip parts (frame errors, confusion matrices, features), so a Fréchet distance is
refitted on the resampled features. The standard deviation of the resampled values and their
2.5 / 97.5 percentiles are reported beside the value computed on all clips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 1000
RESAMPLES_FRECHET = 100  # each resample refits two Gaussians and a matrix square root


def bootstrap(parts: Sequence, statistic: Callable[[list], float], resamples: int = RESAMPLES,
              seed: int = 0) -> dict:
    """{"method", "resamples", "std", "ci95"} of ``statistic`` over clip resamples of ``parts``."""
    n = len(parts)
    if n < 2:
        return {"method": f"bootstrap over clips: needs 2 or more, got {n}", "resamples": 0, "std": None,
                "ci95": None}
    rng = np.random.default_rng(seed)
    values = np.array([statistic([parts[i] for i in rng.integers(0, n, n)]) for _ in range(resamples)], float)
    values = values[np.isfinite(values)]
    return {"method": f"bootstrap over the {n} clips", "resamples": int(resamples),
            "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "ci95": [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if len(values) else None}
