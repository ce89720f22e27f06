"""The Kernel Inception Distance (KID): an unbiased squared MMD between real and synthesized features.

Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR 2018, section 4: KID is the squared maximum mean discrepancy between the feature distributions of real
and generated images, with the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3            (d: the feature dimension)

estimated by the unbiased U-statistic (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012,
Lemma 6)

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n)

i.e. the kernel matrices' diagonals k(x_i, x_i) are excluded from the within-set means.

Why: the Fréchet distance (pipeline/metrics/frechet.py) is biased at small N: over two samples
of one distribution its expected value is positive (the mean term alone contributes
2 tr(S) / N), it shrinks only like 1/N (Chong & Forsyth, "Effectively Unbiased FID and Inception
Score and where to find them", CVPR 2020: FID_N is linear in 1/N), and the bias depends on the
distributions, so two methods scored on ~120 frames can be ranked by their bias rather than
their realism (Bińkowski et al. section 4: the bias depends on the model and can change which
of two models looks better). The U-statistic's expectation is exactly MMD^2, 0 when the
distributions agree, at every N >= 2. The price: a single estimate can be NEGATIVE (it is an
unbiased estimate of a quantity that is >= 0, so its sampling noise straddles 0 when the
distributions are close); report it as is, never clipped, since clipping would reintroduce a
positive bias. ``mmd2_biased`` (the V-statistic, diagonals included) is given only to show that
bias. Measured (tests/test_realism_stats.py: Gaussian features, d = 64, 50 against 50 from one
distribution, 300 draws): KID 0.0010 +- 0.022 (standard error 0.0013, negative in about half
the draws), the V-statistic 0.29 +- 0.02, the Fréchet distance 44 +- 1.4.

At small N (the evaluation's ~120 frames) KID is computed once on all samples (``subset_size``
None). For large N, as in the paper's code (``polynomial_mmd_averages`` in mbinkowski/MMD-GAN:
subsets of 1000 drawn without replacement, 50 of them; torch-fidelity's KID takes 100),
``subset_size`` draws ``subsets`` random subsets of that size from each side without
replacement, with a fixed ``seed``, and averages their unbiased estimates (still unbiased; it
bounds the kernel matrices' memory). Without subsets the kernel sums are
accumulated in row blocks, so memory stays O(block x N) at any N.

Bootstrap over clips (pipeline/metrics/spread.py): a resample that repeats a clip repeats its
feature rows, and a plain concatenation would pair each repeated row with its own copy, k(x, x)
terms that are exactly what the U-statistic excludes (the resampled values would carry the
biased estimator's bias again). :func:`kid_of_parts` is the clip-resampling form: it weights each
distinct clip by how many times the resample holds it and excludes only the pairs of a row with
itself (a weighted U-statistic), so a resample holds no k(x, x) term, as the estimate on all
clips holds none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK = 2048  # rows of a kernel block: 2048 x N float64 at a time


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: need (N >= 2, d) features, got shape {x.shape}")
    return x


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The KID kernel matrix k(a_i, b_j) = (a_i . b_j / d + 1)^3, (len(a), len(b)) float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _weighted_sums(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray) -> float:
    """sum_{i,j} wx_i wy_j k(x_i, y_j), in row blocks of x."""
    return float(sum(wx[s:s + BLOCK] @ polynomial_kernel(x[s:s + BLOCK], y) @ wy for s in range(0, len(x), BLOCK)))


def _self_kernel(x: np.ndarray) -> np.ndarray:
    """k(x_i, x_i) for every row: the kernel matrix's diagonal."""
    return ((x * x).sum(axis=1) / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, wx: np.ndarray | None = None, wy: np.ndarray | None = None) -> float:
    """The (weighted) U-statistic: within-set sums over pairs i != j, each pair weighted w_i w_j and
    normalised by the total weight of such pairs; unit weights give the textbook MMD^2_u."""
    wx = np.ones(len(x)) if wx is None else np.asarray(wx, dtype=np.float64)
    wy = np.ones(len(y)) if wy is None else np.asarray(wy, dtype=np.float64)
    sx, sy = wx.sum(), wy.sum()
    pairs_x, pairs_y = sx * sx - (wx * wx).sum(), sy * sy - (wy * wy).sum()
    if pairs_x <= 0 or pairs_y <= 0:
        raise ValueError("need 2 or more samples (by weight) on both sides")
    kxx = (_weighted_sums(x, wx, x, wx) - (wx * wx) @ _self_kernel(x)) / pairs_x
    kyy = (_weighted_sums(y, wy, y, wy) - (wy * wy) @ _self_kernel(y)) / pairs_y
    kxy = _weighted_sums(x, wx, y, wy) / (sx * sy)
    return float(kxx + kyy - 2.0 * kxy)


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int | None = None, subsets: int = 100,
        seed: int = 0) -> float:
    """KID: the unbiased squared MMD (cubic polynomial kernel) between (n_real, d) and (n_fake, d)
    features, float64. ``subset_size`` None (the default, for small N) or at least both sides'
    sizes: one estimate on all samples. Else the mean of ``subsets`` estimates, each on ``min(subset_size, n)`` rows drawn
    without replacement from each side (numpy default_rng(seed)). Can be negative (see the module
    docstring); 0 means no detectable difference."""
    x, y = _features(real, "real"), _features(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real features have {x.shape[1]} dimensions, fake ones {y.shape[1]}")
    if subset_size is None or subset_size >= max(len(x), len(y)):
        return _mmd2_unbiased(x, y)
    if subset_size < 2 or subsets < 1:
        raise ValueError(f"need subset_size >= 2 and subsets >= 1, got {subset_size} and {subsets}")
    rng = np.random.default_rng(seed)
    mx, my = min(subset_size, len(x)), min(subset_size, len(y))
    values = [_mmd2_unbiased(x[rng.choice(len(x), mx, replace=False)], y[rng.choice(len(y), my, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values))


def mmd2_biased(real: np.ndarray, fake: np.ndarray) -> float:
    """The biased V-statistic of the same MMD^2 (diagonals k(x_i, x_i) included, means over all
    m^2 / n^2 pairs): always >= 0, with an expected value > 0 even for one distribution. Not a
    metric to report; it shows the bias that :func:`kid` removes."""
    x, y = _features(real, "real"), _features(fake, "fake")
    wx, wy = np.ones(len(x)), np.ones(len(y))
    return float(_weighted_sums(x, wx, x, wx) / len(x) ** 2 + _weighted_sums(y, wy, y, wy) / len(y) ** 2
                 - 2.0 * _weighted_sums(x, wx, y, wy) / (len(x) * len(y)))


def kid_of_parts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """KID over clips: ``parts`` holds one (real_features, fake_features) pair per clip, as a
    bootstrap resample hands it over (the same clip object repeated where the resample repeats
    it). Each distinct clip counts as often as it appears, and only a row's pairing with itself is
    excluded, so resamples stay unbiased; on distinct clips this equals :func:`kid` of the
    concatenated features. Repeats are recognised by object identity (the resample's items are
    the clip list's own objects)."""
    counts: dict[int, list] = {}
    for part in parts:
        entry = counts.setdefault(id(part), [part, 0])
        entry[1] += 1
    distinct = list(counts.values())
    real = np.concatenate([_features(p[0], "real") for p, _ in distinct])
    fake = np.concatenate([_features(p[1], "fake") for p, _ in distinct])
    wr = np.concatenate([np.full(len(p[0]), c, np.float64) for p, c in distinct])
    wf = np.concatenate([np.full(len(p[1]), c, np.float64) for p, c in distinct])
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real features have {real.shape[1]} dimensions, fake ones {fake.shape[1]}")
    return _mmd2_unbiased(real, fake, wr, wf)
