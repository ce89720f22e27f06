"""The Fréchet distance between two Gaussians fitted to features: FID / video FID / FVD's core.

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

Statistics are computed in float64 in two passes (the mean, then the covariance of the centred
features), which keeps the covariance accurate for large N. The trace of the matrix square root
needs only eigenvalues of a symmetric PSD matrix, not scipy.linalg.sqrtm's general square root
(slow, and unstable for near-singular covariances): with S_1 = L L^T (Cholesky),
tr((S_1 S_2)^(1/2)) = sum_i sqrt(eig_i(L^T S_2 L)); for a singular S_1 the eigen form
S_1^(1/2) = V diag(sqrt(l)) V^T gives the same with S_1^(1/2) S_2 S_1^(1/2).
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
