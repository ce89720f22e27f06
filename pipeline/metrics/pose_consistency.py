"""Pose consistency of synthesized pose-to-body frames (paper section 4, dance videos): does the
synthesized person stand in the pose they were asked for?

MediaPipe Pose (0.10.21, its model inside the wheel, offline) runs on the synthesized frames, the
way the pose stage's mode ``mediapipe`` runs it on the real ones: in its own environment
(envs/mediapipe, numpy<2, no torch; ``make setup-mediapipe``), as a subprocess of that
environment's python on a folder of PNG frames (``python -m pipeline.stages.pose_mediapipe
--frames-dir``: the same keypoint extraction and BODY_25 mapping), tracking the person from frame
to frame. Its keypoints are compared with the input keypoints (the pose stage's keypoints.json, in
the pose crop's pixels, which are the synthesized frames' pixels: :func:`sequence_keypoints`):

- **PCK@0.1**, per frame: the share of the counted input keypoints that MediaPipe finds within
  0.1 x the person's height of where the input has them. Counted are the input keypoints the pose
  map shows: confidence above ``threshold`` (0.05, the pose map's own threshold) and inside the
  frame. The height is the vertical extent of the counted keypoints (those outside the frame are
  MediaPipe's guesses, and a crop of head and shoulders would get a height that jumps with them).
  A frame where MediaPipe finds no person scores 0; one whose input shows fewer than 2 keypoints
  (or no height) is NaN;
- **person found**: whether MediaPipe finds a person at all.

Without the environment the result says so (``available: False``, the reason and the command that
makes it), never a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.images import write_rgb
from pipeline.keypoints import openpose_json
from pipeline.keypoints.skeleton import NUM_BODY

ROOT = Path(__file__).resolve().parents[2]
MEDIAPIPE_PYTHON = Path("envs") / "mediapipe" / "bin" / "python"  # the config's mediapipe_python, from the root
SETUP_COMMAND = "make setup-mediapipe"
SHOWN = 0.05  # skeleton.render's threshold: a keypoint above it is drawn in the pose map
ALPHA = 0.1


class InputKeypoints(NamedTuple):
    body: np.ndarray        # (T, 25, 3) float32 BODY_25 x, y, confidence in the pose crop's (synthesized frames') pixels
    size: tuple[int, int]   # the crops' (width, height): pose.size


class MediaPipeError(RuntimeError):
    """MediaPipe's environment is there but its run failed (the message has its stderr)."""


def sequence_keypoints(results: Path, sequence: str) -> InputKeypoints:
    """The keypoints the input pose maps of ``sequence`` were drawn from: results/<ds>/pose/<seq>/
    keypoints.json, which the pose stage writes already moved into its crop and scaled to pose.size
    (crop.json), the pixels of the frames synthesized from those maps. A frame without a person
    has every confidence 0."""
    folder = Path(results) / "pose" / sequence
    try:
        records = json.loads((folder / "keypoints.json").read_text())["frames"]
        size = json.loads((folder / "crop.json").read_text())["size"]
        body = np.zeros((len(records), NUM_BODY, 3), np.float32)
        for t, record in enumerate(records):
            if record["body"] is not None:
                body[t] = np.asarray(record["body"], np.float32).reshape(NUM_BODY, 3)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(folder, f"no readable pose-stage keypoints ({err}): run the pose stage first") from None
    return InputKeypoints(body, (int(size[0]), int(size[1])))


def mediapipe_python(python: str | Path | None = None) -> Path:
    """The MediaPipe environment's python: ``python`` (the config's mediapipe_python; a relative
    path is taken from the current folder, as Snakemake's), else envs/mediapipe/bin/python of this
    project."""
    return Path(python) if python else ROOT / MEDIAPIPE_PYTHON


def unavailable_reason(python: str | Path | None = None) -> str | None:
    """Why MediaPipe cannot run (its environment missing), or None."""
    path = mediapipe_python(python)
    if path.is_file() and os.access(path, os.X_OK):
        return None
    return (f"MediaPipe's environment is missing ({path} not found): pose consistency runs MediaPipe Pose in its own "
            f"environment (numpy<2), made by `{SETUP_COMMAND}`")


def subprocess_env() -> dict:
    """The environment of the MediaPipe run: this checkout's code first (the environment's editable
    install may point at another checkout), nothing else of ours on its path (numpy 2, torch)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "pipeline" / "stages" / "pose_mediapipe.py").is_file():
        env["PYTHONPATH"] = str(ROOT)
    return env


def detect_keypoints(frames: np.ndarray, python: str | Path | None = None, model_complexity: int = 1) -> np.ndarray:
    """(T, 25, 3) float32 BODY_25 keypoints MediaPipe finds in ``frames`` ((T, H, W, 3) uint8 RGB), in
    their pixels; a frame without a person is all zeros. Raises MediaPipeError when the run fails."""
    path = mediapipe_python(python)
    with tempfile.TemporaryDirectory(prefix="pose-consistency-") as tmp:
        folder, output = Path(tmp) / "frames", Path(tmp) / "keypoints"
        folder.mkdir()
        for t, frame in enumerate(frames):
            write_rgb(folder / f"{t:06d}.png", frame)
        command = [str(path), "-m", "pipeline.stages.pose_mediapipe", "--frames-dir", str(folder), "--output",
                   str(output), "--model-complexity", str(model_complexity)]
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=subprocess_env())
        if run.returncode != 0:
            raise MediaPipeError(f"{' '.join(command)} failed (exit {run.returncode}): {run.stderr.strip()[-2000:]}")
        body = np.zeros((len(frames), NUM_BODY, 3), np.float32)
        for t, file in enumerate(openpose_json.frame_files(output, len(frames))):
            person = openpose_json.read_frame(file) if file else None
            if person is not None and person.body is not None:
                body[t] = person.body
    return body


def pck(predicted: np.ndarray, reference: np.ndarray, size: tuple[int, int], alpha: float = ALPHA,
        threshold: float = SHOWN) -> dict:
    """PCK@``alpha`` of (T, 25, 3) ``predicted`` keypoints against the input's ``reference``, in a
    ``size`` = (W, H) frame (see the module's docstring). Returns ``pck`` (T,) float64 (NaN where the
    input shows fewer than 2 keypoints), ``correct`` and ``counted`` (T, 25) bool (the keypoint-
    weighted PCK is correct.sum() / counted.sum()) and ``height`` (T,) in pixels."""
    width, height = size
    xy = reference[..., :2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    counted = (reference[..., 2] > threshold) & inside
    extent = np.where(counted, xy[..., 1], -np.inf).max(1) - np.where(counted, xy[..., 1], np.inf).min(1)
    valid = (counted.sum(1) >= 2) & (extent > 0)
    counted &= valid[:, None]
    distance = np.linalg.norm(predicted[..., :2] - xy, axis=-1)
    correct = counted & (predicted[..., 2] > 0) & (distance <= alpha * np.where(valid, extent, 0)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        per_frame = np.where(valid, correct.sum(1) / counted.sum(1), np.nan)
    return {"pck": per_frame.astype(np.float64), "correct": correct, "counted": counted,
            "height": np.where(valid, extent, np.nan)}


def pose_measurements(frames: np.ndarray, input_keypoints: np.ndarray, python: str | Path | None = None,
                      alpha: float = ALPHA, threshold: float = SHOWN, model_complexity: int = 1) -> dict:
    """MediaPipe on each of ``frames`` ((T, H, W, 3) uint8 RGB) against ``input_keypoints`` ((T, 25, 3)
    BODY_25 in those frames' pixels). Per-frame arrays (the caller bootstraps over clips):

    - ``pck``: (T,) float64 PCK@alpha (0 where no person is found, NaN where the input shows fewer
      than 2 keypoints); ``correct``, ``counted``: (T, 25) bool; ``height``: (T,) pixels;
    - ``found``: (T,) bool, MediaPipe found a person;
    - ``keypoints``: (T, 25, 3) what MediaPipe found; ``seconds``: the time it took;
    - ``available``: True, with ``network``, ``alpha``, ``threshold``.

    Without MediaPipe's environment: ``{"available": False, "reason": ..., "command": "make setup-mediapipe"}``.
    """
    frames = np.asarray(frames)
    reference = np.asarray(input_keypoints, np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    if reference.shape != (len(frames), NUM_BODY, 3):
        raise ValueError(f"input_keypoints: expected ({len(frames)}, {NUM_BODY}, 3), got {reference.shape}")
    reason = unavailable_reason(python)
    if reason:
        return {"available": False, "reason": reason, "command": SETUP_COMMAND}
    start = time.perf_counter()
    predicted = detect_keypoints(frames, python, model_complexity)
    scores = pck(predicted, reference, (frames.shape[2], frames.shape[1]), alpha, threshold)
    return {"available": True, **scores, "found": (predicted[..., 2] > 0).any(1), "keypoints": predicted,
            "seconds": time.perf_counter() - start, "alpha": alpha, "threshold": threshold,
            "network": f"MediaPipe Pose (model_complexity {model_complexity}), {mediapipe_python(python)}"}
