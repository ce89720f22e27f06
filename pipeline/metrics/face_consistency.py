"""Face consistency of synthesized edge-to-face frames (paper section 4, face videos): does the
synthesized face have the landmarks it was asked for, and whose face is it?

dlib's networks, from the ``face-recognition-models`` package the sketch stage loads its landmark
model from (pipeline/face/landmarks.py: the same detection, HOG then the CNN detector, and the
same 68-landmark predictor), run on each synthesized frame:

- **landmark error** (NME): of the faces found, the one nearest to where the input landmarks are;
  its 68 landmarks against the input landmarks (the sketch stage's, the ones the input sketch was
  drawn from, in the synthesized frame's pixels: :func:`sequence_landmarks`), the mean
  point-to-point distance divided by the input's inter-ocular distance (outer eye corners, points
  36 and 45). NaN where no face is found. The real frames give the floor: dlib re-detects, it does
  not reproduce its landmarks exactly;
- **faces found**: whether dlib finds a face at all;
- **identity embeddings**: dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``,
  128-d, on the 150x150 face chip aligned by the detected landmarks) of every frame with a face,
  for a Fréchet / kernel distance between the real and the synthesized frames' faces. dlib calls
  two faces the same person below a Euclidean distance of 0.6.

Without dlib or its models the result says so (``available: False``, the reason naming the file and
where to get it, and the command that installs them), never a number.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.core.errors import InputError
from pipeline.face import landmarks as face_landmarks
from pipeline.face.sketch import crop_landmarks

RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_COMMAND = "pip install -e '.[face]'"  # dlib and face-recognition-models
EMBEDDING_DIM = 128
SAME_PERSON = 0.6  # dlib's threshold on the Euclidean distance between two embeddings
OUTER_EYE_CORNERS = (36, 45)


class InputLandmarks(NamedTuple):
    points: np.ndarray    # (T, 68, 2) float32, x y in the synthesized (cropped) frames' pixels
    detected: np.ndarray  # (T,) bool: found by dlib in the real frame (else interpolated by the sketch stage)
    size: int             # the crops' side in pixels (sketch.size)


def sequence_landmarks(results: Path, sequence: str) -> InputLandmarks:
    """The landmarks the input sketches of ``sequence`` were drawn from, in the pixels of the frames
    synthesized from them: results/<ds>/sketch/<seq>/landmarks.csv holds them in the source frame's
    pixels, crop.json the square crop (x0, y0, side) cut from it and resized to ``size``; they are
    mapped exactly as the sketch stage maps them to draw the sketch."""
    folder = Path(results) / "sketch" / sequence
    try:
        crop = json.loads((folder / "crop.json").read_text())
        with open(folder / "landmarks.csv", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        points = np.array([row[3:] for row in rows], np.float32).reshape(len(rows), 68, 2)
        detected = np.array([row[1] == "1" for row in rows])
        box = (int(crop["x0"]), int(crop["y0"]), int(crop["side"]))
        size = int(crop["size"])
    except (OSError, ValueError, KeyError) as err:
        raise InputError(folder, f"no readable sketch-stage landmarks ({err}): run the sketch stage first") from None
    return InputLandmarks(crop_landmarks(points, box, size).astype(np.float32), detected, size)


def recognition_model_path(predictor: Path) -> Path:
    """dlib's face-recognition ResNet beside the 68-landmark model (face-recognition-models ships both)."""
    path = Path(predictor).with_name(RECOGNITION_FILE)
    if not path.is_file():
        raise InputError(path, "dlib's face-recognition model is missing: pip install face-recognition-models, or "
                               "download http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2 and "
                               "unpack it beside the 68-landmark model")
    return path


@functools.lru_cache(maxsize=1)
def _recognizer(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)


def unavailable_reason(predictor: str | Path | None = None) -> str | None:
    """Why dlib's networks cannot run (dlib or a model file missing), or None."""
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed: {INSTALL_COMMAND}"
    try:
        recognition_model_path(face_landmarks.predictor_path(str(predictor) if predictor else None))
    except InputError as err:
        return str(err)
    return None


def embedding(frame: np.ndarray, box: face_landmarks.Box, points: np.ndarray, predictor: Path) -> np.ndarray:
    """(128,) float32 identity embedding of the face in ``box`` with its 68 landmarks ``points``
    (dlib aligns a 150x150 chip on them, padding 0.25, no jitter)."""
    import dlib

    shape = dlib.full_object_detection(dlib.rectangle(*box), [dlib.point(int(x), int(y)) for x, y in points])
    model = _recognizer(str(recognition_model_path(predictor)))
    return np.array(model.compute_face_descriptor(np.ascontiguousarray(frame), shape), np.float32)


def landmark_error(points: np.ndarray, reference: np.ndarray) -> float:
    """NME: mean distance of (68, 2) ``points`` to ``reference`` over the inter-ocular distance of
    ``reference`` (outer eye corners 36 and 45)."""
    a, b = OUTER_EYE_CORNERS
    return float(np.linalg.norm(points - reference, axis=1).mean() / np.linalg.norm(reference[a] - reference[b]))


def face_measurements(frames: np.ndarray, input_landmarks: np.ndarray, predictor: str | Path | None = None) -> dict:
    """dlib on each of ``frames`` ((T, H, W, 3) uint8 RGB) against ``input_landmarks`` ((T, 68, 2), in
    those frames' pixels). Returns per-frame arrays (the caller bootstraps over clips):

    - ``nme``: (T,) float64, the landmark error of the face found (NaN where none is);
    - ``found``: (T,) bool, dlib found a face;
    - ``embeddings``: (n_found, 128) float32, the identity embedding of each found face, in frame order;
    - ``seconds``: the time it took; ``available``: True, with ``network``.

    Without dlib or its models: ``{"available": False, "reason": ..., "command": "pip install -e '.[face]'"}``.
    """
    frames = np.asarray(frames)
    reference = np.asarray(input_landmarks, np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    if reference.shape != (len(frames), 68, 2):
        raise ValueError(f"input_landmarks: expected ({len(frames)}, 68, 2), got {reference.shape}")
    reason = unavailable_reason(predictor)
    if reason:
        return {"available": False, "reason": reason, "command": INSTALL_COMMAND}
    path = face_landmarks.predictor_path(str(predictor) if predictor else None)
    start = time.perf_counter()
    nme, found, embeddings = np.full(len(frames), np.nan), np.zeros(len(frames), bool), []
    for t, (frame, target) in enumerate(zip(frames, reference)):
        boxes = face_landmarks.find_faces(frame, path)
        if not boxes:
            continue
        lo, hi = target.min(0), target.max(0)
        expected = face_landmarks.Box(*(int(round(v)) for v in (*lo, *hi)))
        box = min(boxes, key=expected.shift_to)  # the face where the input asked for one
        points = face_landmarks.face_points(frame, box, path)
        nme[t], found[t] = landmark_error(points, target), True
        embeddings.append(embedding(frame, box, points, path))
    return {"available": True, "nme": nme, "found": found,
            "embeddings": np.stack(embeddings) if embeddings else np.zeros((0, EMBEDDING_DIM), np.float32),
            "seconds": time.perf_counter() - start,
            "network": f"dlib HOG / MMOD face detector, {path.name}, {RECOGNITION_FILE}"}
