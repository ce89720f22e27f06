"""Stage logs are files: progress is one INFO line every N steps there, never progress-bar frames."""

from __future__ import annotations

import json
import logging

from pipeline.core.progress import LogProgress, progress
from tests.conftest import run_module, synth_cfg


def test_a_long_loop_logs_a_line_every_n_steps_and_at_the_end(caplog):
    caplog.set_level(logging.INFO, logger="progress")
    bar = progress(total=25, desc="train demo", unit="step", every=10, interactive=False)
    assert isinstance(bar, LogProgress)
    for _ in range(25):
        bar.update()
        bar.set_postfix(g="1.234")
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == ["train demo: 10/25 step", "train demo: 20/25 step",
                                                        "train demo: 25/25 step"], lines
    assert lines[-1].endswith(", g=1.234)")
    assert list(progress(range(3), desc="seqs", interactive=False)) == [0, 1, 2]


def test_a_stage_run_into_a_log_file_writes_no_carriage_returns(tmp_path):
    dataset = {"adapter": "cityscapes", "generate": {"synthcity": synth_cfg(size=[64, 32], frames=12)}}
    result = run_module("pipeline.stages.synthcity", "--dataset", "tiny", "--dataset-json", json.dumps(dataset),
                        "--results", str(tmp_path / "results"), "--sequences", "synth000_000000")
    assert result.returncode == 0, result.stderr
    assert "%|" not in result.stderr  # no tqdm frames (text mode reads a carriage return as a newline)
    assert "synthcity: 12/12 frame" in result.stderr
