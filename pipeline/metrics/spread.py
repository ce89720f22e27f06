"""The spread of a metric over the evaluated clips: a bootstrap over clips (Efron 1979), and the
paired bootstrap of the difference between two methods scored on the same clips.

Each resample draws as many clips as were evaluated, with replacement, and recomputes the metric
from their per-clip parts (frame errors, confusion matrices, features), so a Fréchet distance is
refitted on the resampled features. The standard deviation of the resampled values and their
2.5 / 97.5 percentiles are reported beside the value computed on all clips.

:func:`paired_difference` compares a method with a baseline (Efron & Tibshirani, "An Introduction
to the Bootstrap", 1993, ch. 16; Koehn, "Statistical significance tests for machine translation
evaluation", EMNLP 2004, for the paired bootstrap over test items). Both methods are scored on the
same clips, and a clip's difficulty (its motion, its classes, how far it is from the training
data) moves both methods' scores alike. Resampling the two methods independently counts that shared
clip-to-clip variance twice and hides real differences; the paired bootstrap draws ONE set of clip
indices per resample and applies it to the method, the baseline and (where each part is a
(real, fake) pair for a distribution distance: KID, Fréchet distance) the real clips' parts, so
the shared variance cancels in the difference. The interval is the 2.5 / 97.5 percentile
interval of the resampled differences; ``significant`` says it excludes 0.

Resampling: numpy ``default_rng(seed)``, one ``integers(0, n, n)`` draw per resample, seed 0 and
RESAMPLES = 1000 resamples by default (RESAMPLES_FRECHET = 100 for statistics that refit
covariances); the same seed gives the same clip indices for every metric, so intervals are
reproducible. With n clips there are at most C(2n - 1, n) distinct resamples (35 for 4 clips):
at such n the interval is coarse, and it is a statement about these clips, not about clips the
evaluation did not see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

RESAMPLES = 1000
RESAMPLES_FRECHET = 100  # each resample refits two Gaussians and a matrix square root


def resampled_indices(n: int, resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The clip indices of each resample: ``resamples`` arrays of n indices in [0, n), drawn with
    replacement from ``default_rng(seed)``, one draw per resample."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield rng.integers(0, n, n)


def bootstrap(parts: Sequence, statistic: Callable[[list], float], resamples: int = RESAMPLES,
              seed: int = 0) -> dict:
    """{"method", "resamples", "std", "ci95"} of ``statistic`` over clip resamples of ``parts``."""
    n = len(parts)
    if n < 2:
        return {"method": f"bootstrap over clips: needs 2 or more, got {n}", "resamples": 0, "std": None,
                "ci95": None}
    values = np.array([statistic([parts[i] for i in idx]) for idx in resampled_indices(n, resamples, seed)], float)
    values = values[np.isfinite(values)]
    return {"method": f"bootstrap over the {n} clips", "resamples": int(resamples),
            "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "ci95": [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if len(values) else None}


def paired_difference(parts_method: Sequence, parts_baseline: Sequence, statistic: Callable[[list], float],
                      resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The paired bootstrap of statistic(method) - statistic(baseline) over the same clips.

    ``parts_method[k]`` and ``parts_baseline[k]`` are clip k's parts for each method: for a
    mean-type metric an array of per-frame values; for a distribution distance against the real
    clips a (real_features, fake_features) tuple holding clip k's real features on both sides.
    ``statistic`` maps a list of parts to a float (e.g. the mean of their concatenation, or
    :func:`pipeline.metrics.kid.kid_of_parts`). Every resample applies one set of clip indices
    (:func:`resampled_indices`) to both lists.

    Returns {"difference": the difference on all clips, "low", "high": the 2.5 / 97.5 percentiles
    of the resampled differences, "std": their standard deviation, "significant": whether
    [low, high] excludes 0, "resamples": the number of resamples with a finite difference,
    "seed", "method": a description}; with fewer than 2 clips (or fewer than 2 finite resamples)
    low, high and std are None and significant is False."""
    n = len(parts_method)
    if len(parts_baseline) != n:
        raise ValueError(f"the method has {n} clips, the baseline {len(parts_baseline)}: a paired "
                         "comparison needs the same clips, in the same order")
    difference = float(statistic(list(parts_method)) - statistic(list(parts_baseline)))
    entry = {"difference": difference, "low": None, "high": None, "std": None, "significant": False,
             "resamples": 0, "seed": int(seed), "method": f"paired bootstrap over clips: needs 2 or more, got {n}"}
    if n < 2:
        return entry
    values = np.array([statistic([parts_method[i] for i in idx]) - statistic([parts_baseline[i] for i in idx])
                       for idx in resampled_indices(n, resamples, seed)], float)
    values = values[np.isfinite(values)]
    entry["method"] = f"paired bootstrap over the {n} clips (the same clip indices for both methods)"
    if len(values) < 2:
        return entry
    low, high = float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
    return {**entry, "low": low, "high": high, "std": float(values.std(ddof=1)),
            "significant": bool(low > 0 or high < 0), "resamples": len(values)}
