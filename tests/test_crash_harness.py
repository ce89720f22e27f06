"""The crash harness (pipeline/tools/crash_harness.py) on a few stages, the trainer and synthesis:
killed by SIGKILL at seeded points and rerun, they leave what an uninterrupted run leaves; and the
harness does flag a writer that is not crash-safe. benchmarks/crash_harness.py runs every case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.tools import crash_harness

CODE = """
import sys, time
from pathlib import Path
out = Path(sys.argv[1]) / "crash" / "naive"
out.mkdir(parents=True, exist_ok=True)
for i in range(20):
    target = out / f"{i:02d}.txt"
    if target.exists():  # "resumable": keeps what a killed run wrote, complete or not
        continue
    with open(target, "w") as f:
        f.write("first half ")
        f.flush()
        time.sleep(0.02)
        f.write("second half")
"""


STAGES = ["frames", "labels", "cache", "train", "synthesize", "sketch", "pose"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return crash_harness.prepare_base(tmp_path_factory.mktemp("crash"), crash_harness.checked_cases(STAGES))


def test_every_stage_cli_a_rule_calls_is_a_case():
    import re

    rules = "".join(path.read_text() for path in (Path(__file__).parent.parent / "workflow" / "rules").glob("*.smk"))
    called = set(re.findall(r'stage_shell\(\s*"pipeline\.stages\.(\w+)', rules))
    called |= {"_".join(cli) for cli in re.findall(r'stage_shell\(\s*"pipeline\.(preference) (\w+)', rules)}
    assert len(called) >= 15
    cases = {name for case in crash_harness.cases() for name in (case.stage, (case.imports or "").rsplit(".", 1)[-1])}
    assert called - cases == set(), "stage CLIs the harness never kills"


@pytest.mark.parametrize("stage", STAGES)
def test_a_killed_stage_rerun_leaves_what_an_uninterrupted_run_leaves(base, tmp_path, stage):
    [case] = crash_harness.checked_cases([stage])
    rows = crash_harness.check(case, base, tmp_path, kills=2, seed=1)
    assert all(row["identical"] for row in rows), rows
    assert any(row["killed"] for row in rows), rows  # at least one kill landed before the end


def test_the_harness_flags_a_writer_that_is_not_crash_safe(base, tmp_path):
    naive = crash_harness.Case("naive", lambda results: [sys.executable, "-c", CODE, str(results)], (), ("naive",),
                               imports="pathlib")
    rows = crash_harness.check(naive, base, tmp_path, kills=3, seed=0)
    assert all(row["killed"] for row in rows), rows
    assert not all(row["identical"] for row in rows), rows  # a half-written file survives the rerun
