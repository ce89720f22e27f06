"""Fréchet distance time for 2048-d features at N = 10,000 (Inception pool3 size).

    python benchmarks/frechet_speed.py [--n 10000] [--dim 2048] [--scipy]

'statistics' is the two-pass float64 mean + covariance of one set; 'distance' is the Cholesky-form
Fréchet distance of two sets' statistics (pipeline/metrics/frechet.py). --scipy also times the
scipy.linalg.sqrtm form for comparison (slow). Target: statistics + distance <= 5 s on this CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.metrics.frechet import frechet_distance, statistics
from _table import print_table  # noqa: E402 (sibling module of the script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--scipy", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(args.dim, args.dim)).astype(np.float32) / np.sqrt(args.dim)
    a = (rng.normal(size=(args.n, args.dim)).astype(np.float32) @ mix)
    b = (rng.normal(size=(args.n, args.dim)).astype(np.float32) @ mix) * 1.1 + 0.05
    start = time.perf_counter()
    sa = statistics(a)
    t_stats = time.perf_counter() - start
    sb = statistics(b)
    start = time.perf_counter()
    value = frechet_distance(sa, sb)
    t_fd = time.perf_counter() - start
    rows = [("Cholesky / eigen form (ours)", t_stats, t_fd, value)]
    if args.scipy:
        from scipy import linalg

        start = time.perf_counter()
        root = linalg.sqrtm(sa.sigma @ sb.sigma)
        diff = sa.mu - sb.mu
        ref = diff @ diff + np.trace(sa.sigma) + np.trace(sb.sigma) - 2 * np.trace(root.real)
        rows.append(("scipy sqrtm", t_stats, time.perf_counter() - start, ref))
    print_table(f"Fréchet distance, N={args.n}, d={args.dim}",
                ["method", "statistics of one set (s)", "distance (s)", "total for 2 sets (s)", "value"],
                [[name, f"{ts:.2f}", f"{tf:.2f}", f"{2 * ts + tf:.2f}", f"{v:.4f}"] for name, ts, tf, v in rows])


if __name__ == "__main__":
    main()
