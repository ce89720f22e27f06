"""Human preference scores (paper section 4, Tables 1-2): per pair of methods, the share of answers
that prefer ours, with 95% intervals.

Raters who prefer a broken video in any attention check are dropped first (all their answers),
and so, when the study has attention checks, are raters who answered none of them (``keep_unchecked``
keeps those: crowd workers who took single questions).
Per study, length and compared method: the number of answers and raters, the share preferring
ours, the Wilson score interval (scipy's ``binomtest(...).proportion_ci("wilson")``: answers
taken as independent) and a bootstrap interval over raters (raters resampled with replacement,
their answers pooled: honest when one rater's answers agree with each other). The paper prints a
score as "ours / theirs", e.g. 0.87 / 0.13.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from pipeline.core.atomic import atomic_file

COLUMNS = ["study", "length", "ours", "other", "answers", "raters", "ours_preferred", "score", "paper",
           "wilson_low", "wilson_high", "bootstrap_low", "bootstrap_high"]


def failed_attention(rows: list[dict]) -> set[str]:
    """Raters who chose the broken video (video b) in an attention check."""
    return {r["rater_id"] for r in rows if r["study"] == "attention" and r["choice"] != "a"}


def wilson(wins: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    interval = binomtest(wins, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def bootstrap_over_raters(wins_by_rater: dict[str, tuple[int, int]], resamples: int = 2000, seed: int = 0,
                          confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the pooled share when the raters are resampled with replacement."""
    counts = np.array(list(wins_by_rater.values()), dtype=float)  # (raters, [wins, answers])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(counts), size=(resamples, len(counts)))
    sums = counts[picks].sum(axis=1)
    shares = sums[:, 0] / sums[:, 1]
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(shares, tail)), float(np.percentile(shares, 100 - tail))


def comparisons(study) -> set[tuple[str, str, str, str]]:
    """(study, length, ours, other) of every pair question of a study: each gets a row, answered or not."""
    return {(q.study, q.length, q.method_a, q.method_b) for q in study.questions if not q.attention}


def scores(rows: list[dict], expected: set[tuple] = frozenset(), checks: bool = True, keep_unchecked: bool = False,
           resamples: int = 2000, seed: int = 0) -> tuple[list[dict], dict]:
    """(one score row per study, length and compared method, ``expected`` ones included with 0
    answers; a summary of who was counted). ``checks``: the study has attention checks."""
    failed = failed_attention(rows)
    checked = {r["rater_id"] for r in rows if r["study"] == "attention"}
    unchecked = set() if keep_unchecked or not checks else {r["rater_id"] for r in rows} - checked
    dropped = failed | unchecked
    kept = [r for r in rows if r["rater_id"] not in dropped and r["study"] != "attention"]
    groups: dict[tuple, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for key in expected:
        groups[key]
    for r in kept:
        tally = groups[(r["study"], r["length"], r["method_a"], r["method_b"])][r["rater_id"]]
        tally[0] += r["choice"] == "a"
        tally[1] += 1
    table = []
    for (study, length, ours, other), by_rater in sorted(groups.items()):
        wins, n = (sum(t[i] for t in by_rater.values()) for i in (0, 1))
        row = {"study": study, "length": length, "ours": ours, "other": other, "answers": n, "raters": len(by_rater),
               "ours_preferred": wins}
        if n:
            low, high = wilson(wins, n)
            boot_low, boot_high = bootstrap_over_raters({k: tuple(v) for k, v in by_rater.items()}, resamples, seed)
            row.update(score=wins / n, paper=f"{wins / n:.2f} / {1 - wins / n:.2f}", wilson_low=low, wilson_high=high,
                       bootstrap_low=boot_low, bootstrap_high=boot_high)
        else:
            row.update(score=None, paper="no answers", wilson_low=None, wilson_high=None, bootstrap_low=None,
                       bootstrap_high=None)
        table.append(row)
    raters = {r["rater_id"] for r in rows}
    summary = {"answers": len(rows), "raters": len(raters), "dropped_failed_attention": len(failed),
               "dropped_unchecked": len(unchecked - failed), "answers_counted": len(kept),
               "by_source": {s: len({r["rater_id"] for r in rows if r["source"] == s})
                             for s in sorted({r["source"] for r in rows})}}
    return table, summary


def paper_table(table: list[dict]) -> str:
    """The paper's format: one line per comparison, "ours / theirs" with the Wilson interval."""
    lines = ["| study | length | comparison | preference score | 95% (Wilson) | 95% (raters) | answers |",
             "|---|---|---|---:|---:|---:|---:|"]
    for row in table:
        intervals = (f"{row['wilson_low']:.2f}-{row['wilson_high']:.2f} | {row['bootstrap_low']:.2f}-"
                     f"{row['bootstrap_high']:.2f}") if row["answers"] else "- | -"
        lines.append(f"| {row['study']} | {row['length']} | {row['ours']} / {row['other']} | {row['paper']} | "
                     f"{intervals} | {row['answers']} |")
    return "\n".join(lines)


def write(table: list[dict], summary: dict, csv_path: Path) -> tuple[Path, Path]:
    """preference.csv (the table) and preference.json (table, summary, the paper-format table)."""
    csv_path = Path(csv_path)
    with atomic_file(csv_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    json_path = csv_path.with_suffix(".json")
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps({"scores": table, "summary": summary, "table": paper_table(table)}, indent=1))
    return csv_path, json_path
