"""Fréchet distance: a closed-form case, agreement with scipy's sqrtm, and the statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from pipeline.metrics.frechet import (GaussianStats, features_distance, frechet_distance, statistics,
                                      trace_sqrt_product)


def _scipy_fd(a: GaussianStats, b: GaussianStats) -> float:
    root = linalg.sqrtm(a.sigma @ b.sigma)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(root.real))


def test_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    v1, v2 = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(GaussianStats(mu1, np.diag(v1), 2), GaussianStats(mu2, np.diag(v2), 2))
    assert abs(got - expected) / expected < 1e-12
    same = GaussianStats(mu1, np.diag(v1), 2)
    assert frechet_distance(same, same) < 1e-9


@pytest.mark.parametrize("dim, rank", [(64, 64), (128, 40)])  # full rank, and singular covariances
def test_matches_scipy_sqrtm_on_random_covariances(dim, rank):
    rng = np.random.default_rng(dim)
    for _ in range(3):
        a_factor, b_factor = rng.normal(size=(dim, rank)), rng.normal(size=(dim, rank))
        a = GaussianStats(rng.normal(size=dim), a_factor @ a_factor.T / rank, 2)
        b = GaussianStats(rng.normal(size=dim), b_factor @ b_factor.T / rank, 2)
        ours, reference = frechet_distance(a, b), _scipy_fd(a, b)
        assert abs(ours - reference) / abs(reference) < 1e-6, (ours, reference)


def test_statistics_two_pass_float64_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    features = (rng.normal(size=(5000, 8)) * 0.01 + 1e4).astype(np.float32)  # large offset, small spread
    stats = statistics(features)
    reference = np.cov(features.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(stats.sigma, reference, rtol=1e-9, atol=1e-15)
    assert stats.count == 5000
    stats.save(tmp_path / "s.npz")
    loaded = GaussianStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    with pytest.raises(ValueError, match="need"):
        statistics(features[:1])


def test_trace_sqrt_of_identity_product():
    eye = np.eye(10)
    assert abs(trace_sqrt_product(eye * 4, eye) - 20.0) < 1e-12


def test_the_sample_form_for_few_features_equals_the_covariance_form():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 300)), rng.normal(0.3, 1.5, size=(55, 300))
    expected = frechet_distance(statistics(a), statistics(b))
    assert features_distance(a, b) == pytest.approx(expected, rel=1e-6)
    wide = rng.normal(size=(400, 30)), rng.normal(size=(300, 30))  # more rows than dimensions: the usual form
    assert features_distance(*wide) == pytest.approx(frechet_distance(statistics(wide[0]), statistics(wide[1])))
