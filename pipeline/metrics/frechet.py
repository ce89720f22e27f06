"""The Fréchet distance between two Gaussians fitted to features: FID / video FID / FVD's core.

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

Statistics are computed in float64 in two passes (the mean, then the covariance of the centred
features), which keeps the covariance accurate for large N. The trace of the matrix square root
needs only eigenvalues of a symmetric PSD matrix, not scipy.linalg.sqrtm's general square root
(slow, and unstable for near-singular covariances): with S_1 = L L^T (Cholesky),
tr((S_1 S_2)^(1/2)) = sum_i sqrt(eig_i(L^T S_2 L)); for a singular S_1 the eigen form
S_1^(1/2) = V diag(sqrt(l)) V^T gives the same with S_1^(1/2) S_2 S_1^(1/2).

With fewer features than dimensions (a bootstrap over a few clips of 960-d features), the sample
form is exact and far cheaper: with A, B the centred features (n_1 x d, n_2 x d), S_1 S_2 has the
non-zero eigenvalues of (A B^T)(A B^T)^T / ((n_1 - 1)(n_2 - 1)), so tr((S_1 S_2)^(1/2)) is the sum of
the singular values of the n_1 x n_2 matrix A B^T over sqrt((n_1 - 1)(n_2 - 1))
(:func:`features_distance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    mu: np.ndarray  # (d,) float64
    sigma: np.ndarray  # (d, d) float64
    count: int

    def save(self, path: str | Path) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, count=self.count)

    @classmethod
    def load(cls, path: str | Path) -> "GaussianStats":
        with np.load(path) as data:
            return cls(data["mu"], data["sigma"], int(data["count"]))


def statistics(features: np.ndarray) -> GaussianStats:
    """Mean and covariance (unbiased) of (N, d) features, in float64, two passes."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, d) features, got shape {x.shape}")
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return GaussianStats(mu, sigma, x.shape[0])


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD matrices.

    Cholesky form when sigma1 is positive definite (sigma1 = L L^T: the eigenvalues of sigma1 sigma2
    are those of the symmetric L^T sigma2 L, so only eigenvalues are needed), else the eigen form."""
    try:
        lower = np.linalg.cholesky(sigma1)
    except np.linalg.LinAlgError:
        return _trace_sqrt_eigen(sigma1, sigma2)
    inner = lower.T @ sigma2 @ lower
    inner = (inner + inner.T) / 2
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum())


def _trace_sqrt_eigen(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = root1 @ sigma2 @ root1
    inner = (inner + inner.T) / 2  # symmetric up to rounding
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum())


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    diff = a.mu - b.mu
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt_product(a.sigma, b.sigma)
    return float(max(value, 0.0))


def features_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to (N, d) features ``a`` and ``b``; the
    sample form (singular values of A B^T) when both sets have fewer rows than dimensions."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if max(len(x), len(y)) >= x.shape[1]:
        return frechet_distance(statistics(x), statistics(y))
    if min(len(x), len(y)) < 2:
        raise ValueError(f"need N >= 2 features on both sides, got {len(x)} and {len(y)}")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cx, cy = x - mu_x, y - mu_y
    nx, ny = len(x) - 1, len(y) - 1
    cross = np.linalg.svd(cx @ cy.T, compute_uv=False).sum() / np.sqrt(nx * ny)
    diff = mu_x - mu_y
    value = diff @ diff + (cx * cx).sum() / nx + (cy * cy).sum() / ny - 2.0 * cross
    return float(max(value, 0.0))
