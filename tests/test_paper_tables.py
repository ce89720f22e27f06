"""benchmarks/paper_tables.py: which of the demo's finished runs a seed reuses, and the table's summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import paper_tables  # noqa: E402

RUNS = {
    "frame_by_frame": {"model": {"n_frames": 1}},
    "vid2vid": {"first_frames_from": "frame_by_frame", "model": {}},
    "no_dv": {"first_frames_from": "frame_by_frame", "train": {"seed": 3}},
}


def test_only_runs_trained_with_the_seed_are_reused():
    methods = ["frame_by_frame", "covst", "vid2vid", "no_dv"]
    assert paper_tables.runs_trained_with(RUNS, methods, 0) == ["frame_by_frame", "covst", "vid2vid"]
    assert paper_tables.runs_trained_with(RUNS, methods, 1) == []
    # no_dv's own seed is 3, but its first frames come from frame_by_frame, trained with seed 0
    assert paper_tables.runs_trained_with(RUNS, methods, 3) == []


def test_seed_results_links_finished_runs_only(tmp_path):
    source = tmp_path / "results" / "demo"
    (source / "cache").mkdir(parents=True)
    for run, done in (("frame_by_frame", True), ("vid2vid", False)):
        (source / "checkpoints" / run).mkdir(parents=True)
        (source / "checkpoints" / run / "final.pt").write_bytes(b"x")
        (source / "synth" / run).mkdir(parents=True)
        if done:
            (source / "synth" / run / "synthesis.json").write_text("{}")
    target = paper_tables.seed_results(source, tmp_path / "work", 0, ["frame_by_frame", "vid2vid"])
    assert (target / "cache").resolve() == (source / "cache").resolve()
    assert (target / "checkpoints" / "frame_by_frame").is_symlink()
    assert (target / "synth" / "frame_by_frame" / "synthesis.json").is_file()
    assert not (target / "checkpoints" / "vid2vid").exists()  # not synthesized there: trained again


def test_summary_is_mean_and_spread_over_seeds():
    per_seed = {0: {"vid2vid": {"psnr": {"value": 17.0}}}, 1: {"vid2vid": {"psnr": {"value": 19.0}}}}
    summary = paper_tables.summarize(per_seed, ["vid2vid"])
    assert summary["vid2vid"]["psnr"]["mean"] == 18.0
    assert abs(summary["vid2vid"]["psnr"]["std"] - 2 ** 0.5) < 1e-9
    assert paper_tables._cell(summary["vid2vid"]["psnr"]) == "18.00 ± 1.41"
    # the paired comparisons with the baseline, counted over the seeds
    per_seed[0]["vid2vid"]["psnr"]["vs_baseline"] = {"verdict": "better"}
    per_seed[1]["vid2vid"]["psnr"]["vs_baseline"] = {"verdict": "no significant difference"}
    summary = paper_tables.summarize(per_seed, ["vid2vid"])
    assert paper_tables._cell(summary["vid2vid"]["psnr"]) == "18.00 ± 1.41 (better 1/2)"
    per_seed[0]["vid2vid"]["psnr"]["vs_baseline"] = {"verdict": "no significant difference"}
    assert paper_tables._cell(paper_tables.summarize(per_seed, ["vid2vid"])["vid2vid"]["psnr"]) == \
        "18.00 ± 1.41 (n.s. 2/2)"


def test_a_seed_is_evaluated_again_only_when_its_videos_changed(tmp_path, monkeypatch):
    import json
    import os

    from pipeline.core import config as config_mod

    results = tmp_path / "seed0" / "demo"
    (results / "synth" / "vid2vid").mkdir(parents=True)
    (results / "synth" / "vid2vid" / "synthesis.json").write_text("{}")
    calls = []
    monkeypatch.setattr(paper_tables.evaluate_mod, "evaluate",
                        lambda ds, methods, **compare: calls.append(methods) or {m: {"psnr": {"value": 1.0}} for m in methods})
    ds = config_mod.Dataset("demo", {}, results)
    assert paper_tables.evaluated(ds, results, ["vid2vid"]) == {"vid2vid": {"psnr": {"value": 1.0}}}
    saved = results / "paper_tables.json"
    assert json.loads(saved.read_text())["vid2vid"]["psnr"]["value"] == 1.0
    paper_tables.evaluated(ds, results, ["vid2vid"])
    assert len(calls) == 1  # reused
    later = saved.stat().st_mtime + 10
    os.utime(results / "synth" / "vid2vid" / "synthesis.json", (later, later))
    paper_tables.evaluated(ds, results, ["vid2vid"])
    assert len(calls) == 2  # the videos are newer: evaluated again
