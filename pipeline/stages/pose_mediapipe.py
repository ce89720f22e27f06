"""Stage 'pose_mediapipe' (task pose, mode mediapipe): MediaPipe Pose keypoints for every frame of
a sequence, written as OpenPose-format JSON (BODY_25) that the pose stage renders.

    envs/mediapipe/bin/python -m pipeline.stages.pose_mediapipe --dataset pose_demo [--results results] \
        --sequences SEQ ... [--model-complexity 1] [--job-summary OUT.json]
    envs/mediapipe/bin/python -m pipeline.stages.pose_mediapipe --frames-dir FRAMES/ --output OUT/

MediaPipe 0.10.21 is the last release that ships its pose models inside the wheel (so it runs
offline), and it needs numpy<2: it lives in its own environment (``make setup-mediapipe``,
envs/mediapipe.txt) and this module imports neither torch nor the rest of the pipeline's heavy
dependencies (only numpy, OpenCV and MediaPipe). Tracking mode (``static_image_mode=False``) keeps
the person between frames. Writes ``<seq>_<frame:012d>_keypoints.json`` per frame and ``done.json``
(frames, frames with a person, seconds, and the size of every file written) last, into a temporary
folder renamed into place, under <results>/<ds>/keypoints/<seq>/ (pipeline/core/atomic.py, which
imports nothing heavy); a sequence whose done.json exists with the same settings and whose files
are all there whole is kept. ``--results`` is the results folder, as for every stage (the
dataset's folder is ``<results>/<dataset>``). ``--frames-dir`` runs the same on a folder of PNG
frames of one video instead (its i-th frame in name order is frame i; the evaluation's pose
consistency runs it on synthesized frames, pipeline/metrics/pose_consistency.py), into ``--output``.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.atomic import atomic_dir, atomic_file, file_listing, listing_problem
from pipeline.core.cli_help import cli_parser
from pipeline.keypoints.skeleton import from_mediapipe33

DONE = "done.json"


def keypoints_of(results, width: int, height: int) -> list[dict]:
    if results.pose_landmarks is None:
        return []
    points = np.array([[lm.x * width, lm.y * height, lm.visibility] for lm in results.pose_landmarks.landmark],
                      np.float32)
    body = from_mediapipe33(points)
    return [{"pose_keypoints_2d": np.round(body, 3).reshape(-1).tolist()}]


def write_keypoints(frames: list[tuple[int, Path]], name: str, output: Path, model_complexity: int = 1) -> dict:
    """MediaPipe Pose on ``frames`` ((frame number, image path), in video order, tracked from frame
    to frame) into ``output``: ``<name>_<frame:012d>_keypoints.json`` per frame, then ``done.json``."""
    import mediapipe as mp

    start, found = time.perf_counter(), 0
    with atomic_dir(output) as tmp, mp.solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                                           min_detection_confidence=0.5) as pose:
        for index, path in frames:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"error: {path}: cannot read the frame")
            height, width = image.shape[:2]
            people = keypoints_of(pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), width, height)
            found += bool(people)
            (tmp / f"{name}_{index:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
        summary = {"frames": len(frames), "with_person": found, "seconds": round(time.perf_counter() - start, 2),
                   "model_complexity": model_complexity, "mediapipe": mp.__version__}
        (tmp / DONE).write_text(json.dumps({**summary, "files": file_listing(tmp)}))
    return summary


def run(frames_dir: Path, output: Path, model_complexity: int = 1) -> dict:
    """Keypoints of a sequence of the frames stage (frames_dir/manifest.csv lists its frames)."""
    manifest = frames_dir / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"error: {manifest}: no frame manifest (run the frames stage first)")
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    results_root = frames_dir.parent.parent  # results/<ds>/
    return write_keypoints([(int(row["index"]), results_root / row["path"]) for row in rows], frames_dir.name, output,
                           model_complexity)


def run_folder(folder: Path, output: Path, model_complexity: int = 1) -> dict:
    """Keypoints of every PNG in ``folder`` (a video's frames, e.g. synthesized ones), in name
    order: the i-th is frame i."""
    frames = sorted(p for p in folder.glob("*.png") if not p.name.startswith("."))
    if not frames:
        raise SystemExit(f"error: {folder}: no PNG frames")
    return write_keypoints(list(enumerate(frames)), folder.name, output, model_complexity)


def kept_summary(output: Path, model_complexity: int) -> dict | None:
    """The summary of a sequence already complete with these settings (every file there whole), or None."""
    try:
        done = json.loads((output / DONE).read_text())
    except (OSError, ValueError):
        return None
    if done.get("model_complexity") != model_complexity:
        return None
    problem = listing_problem(output, done.pop("files", None))
    if problem:
        print(f"{output.name}: made again: {problem}", flush=True)
        return None
    return done


def dataset_keypoints(parser, args) -> dict:
    """{sequence: summary} of the dataset's sequences (those complete with these settings kept)."""
    if not args.dataset or not args.sequences:
        parser.error("give --dataset and --sequences (or --frames-dir and --output)")
    folder = args.results / args.dataset
    summaries = {}
    for seq in args.sequences:
        output = folder / "keypoints" / seq
        summaries[seq] = kept_summary(output, args.model_complexity) or run(folder / "frames" / seq, output,
                                                                             args.model_complexity)
        print(seq, json.dumps(summaries[seq]), flush=True)
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("python -m pipeline.stages.pose_mediapipe", __doc__)
    parser.add_argument("--dataset", help="dataset name: frames/<seq>/ in, keypoints/<seq>/ out, under "
                                          "<results>/<dataset>/ (with --sequences)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    parser.add_argument("--sequences", nargs="+", help="sequence names (their frames/<seq>/)")
    parser.add_argument("--frames-dir", type=Path, help="instead of a dataset's sequences: a folder of PNG frames of "
                                                        "one video (in name order), e.g. synthesized ones")
    parser.add_argument("--output", type=Path, help="with --frames-dir: the folder to write its keypoints to")
    parser.add_argument("--model-complexity", type=int, default=1, choices=[0, 1, 2],
                        help="MediaPipe Pose model: 0 lite, 1 full (default, in the wheel), 2 heavy")
    parser.add_argument("--job-summary", type=Path, help="write the job's summary JSON here (Snakemake's output)")
    args = parser.parse_args(argv)
    if args.frames_dir is not None:
        if args.output is None or args.dataset or args.sequences:
            parser.error("--frames-dir needs --output and takes no --dataset / --sequences")
        summaries = {args.frames_dir.name: run_folder(args.frames_dir, args.output, args.model_complexity)}
        print(args.frames_dir.name, json.dumps(summaries[args.frames_dir.name]), flush=True)
    else:
        summaries = dataset_keypoints(parser, args)
    if args.job_summary:
        with atomic_file(args.job_summary) as tmp:
            tmp.write_text(json.dumps({"stage": "pose_mediapipe", "sequences": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
