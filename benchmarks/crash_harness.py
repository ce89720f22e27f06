"""Crash safety: every stage CLI killed by SIGKILL at seeded points, rerun, and compared with an
uninterrupted run (the trainers and synthesis included; pipeline/tools/crash_harness.py says how).

    python benchmarks/crash_harness.py [--kills 5] [--seed 0] [--workdir DIR] [--stages NAME ...]

Prints one row per stage: kill points tried, how many of them killed the process before it ended,
and how many reruns left outputs identical to the uninterrupted run's (bytes; the trainers'
checkpoints tensor by tensor). The target is every kill point identical.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._table import print_table  # noqa: E402
from pipeline.tools import crash_harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="kept for a rerun (default: a temporary folder)")
    parser.add_argument("--stages", nargs="*", help="these cases only (default: every one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        rows = defaultdict(list)
        for row in crash_harness.run_cases(workdir, args.stages, args.kills, args.seed):
            rows[row["stage"]].append(row)
            print(row, flush=True)
    table = []
    for stage, results in rows.items():
        differs = sorted({name for r in results for name in r["differs"]})
        table.append([stage, len(results), sum(r["killed"] for r in results), sum(r["identical"] for r in results),
                      f"{results[0]['reference_s']:.1f}", ", ".join(r["kill_at"] for r in results),
                      ", ".join(differs) or "-"])
    print_table(f"SIGKILL at seeded points, rerun, compared (seed {args.seed})",
                ["stage", "kill points", "killed", "identical", "reference s", "kill points at", "differs"], table)


if __name__ == "__main__":
    main()
