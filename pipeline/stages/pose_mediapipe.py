"""Stage 'pose_mediapipe' (task pose, mode mediapipe): MediaPipe Pose keypoints for every frame of
a sequence, written as OpenPose-format JSON (BODY_25) that the pose stage renders.

    envs/mediapipe/bin/python -m pipeline.stages.pose_mediapipe --dataset pose_demo [--results results] \
        --sequences SEQ ... [--model-complexity 1] [--job-summary OUT.json]

MediaPipe 0.10.21 is the last release that ships its pose models inside the wheel (so it runs
offline), and it needs numpy<2: it lives in its own environment (``make setup-mediapipe``,
envs/mediapipe.txt) and this module imports neither torch nor the rest of the pipeline's heavy
dependencies (only numpy, OpenCV and MediaPipe). Tracking mode (``static_image_mode=False``) keeps
the person between frames. Writes ``<seq>_<frame:012d>_keypoints.json`` per frame and ``done.json``
(frames, frames with a person, seconds, and the size of every file written) last, into a temporary
folder renamed into place, under <results>/<ds>/keypoints/<seq>/ (pipeline/core/atomic.py, which
imports nothing heavy); a sequence whose done.json exists with the same settings and whose files
are all there whole is kept. ``--results`` is the results folder, as for every stage (the
dataset's folder is ``<results>/<dataset>``).
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


def run(frames_dir: Path, output: Path, model_complexity: int = 1) -> dict:
    import mediapipe as mp

    manifest = frames_dir / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"error: {manifest}: no frame manifest (run the frames stage first)")
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    results_root = frames_dir.parent.parent  # results/<ds>/
    start, found = time.perf_counter(), 0
    with atomic_dir(output) as tmp, mp.solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                                           min_detection_confidence=0.5) as pose:
        for row in rows:
            path = results_root / row["path"]
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"error: {path}: cannot read the frame")
            height, width = image.shape[:2]
            people = keypoints_of(pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), width, height)
            found += bool(people)
            name = f"{frames_dir.name}_{int(row['index']):012d}_keypoints.json"
            (tmp / name).write_text(json.dumps({"version": 1.3, "people": people}))
        summary = {"frames": len(rows), "with_person": found, "seconds": round(time.perf_counter() - start, 2),
                   "model_complexity": model_complexity, "mediapipe": mp.__version__}
        (tmp / DONE).write_text(json.dumps({**summary, "files": file_listing(tmp)}))
    return summary


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


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("python -m pipeline.stages.pose_mediapipe", __doc__)
    parser.add_argument("--dataset", required=True, help="dataset name: frames/<seq>/ in, keypoints/<seq>/ out, under "
                                                         "<results>/<dataset>/")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    parser.add_argument("--sequences", nargs="+", required=True, help="sequence names (their frames/<seq>/)")
    parser.add_argument("--model-complexity", type=int, default=1, choices=[0, 1, 2],
                        help="MediaPipe Pose model: 0 lite, 1 full (default, in the wheel), 2 heavy")
    parser.add_argument("--job-summary", type=Path, help="write the job's summary JSON here (Snakemake's output)")
    args = parser.parse_args(argv)
    folder = args.results / args.dataset
    summaries = {}
    for seq in args.sequences:
        output = folder / "keypoints" / seq
        summaries[seq] = kept_summary(output, args.model_complexity) or run(folder / "frames" / seq, output,
                                                                             args.model_complexity)
        print(seq, json.dumps(summaries[seq]), flush=True)
    if args.job_summary:
        with atomic_file(args.job_summary) as tmp:
            tmp.write_text(json.dumps({"stage": "pose_mediapipe", "sequences": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
