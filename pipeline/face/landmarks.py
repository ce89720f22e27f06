"""dlib face detection and 68-point landmarks per frame, the subject tracked, gaps filled from the
neighbours.

The 68-landmark model comes from the ``face-recognition-models`` package (found through
``importlib.util.find_spec``, no pkg_resources) or a path the user gives. Detection runs dlib's
HOG frontal-face detector with one upsampling (small faces, e.g. QCIF video) and, where it finds
nothing, dlib's CNN (MMOD) face detector shipped in the same package, which also finds turned
faces. The subject is tracked (:func:`track`): in the first frame with a face, the largest; then,
of the faces found, the one nearest to the subject's face in the last frame it was found in. When
that face's centre is farther from it than ``max_shift`` times its size, the subject was missed
and another face found: the frame is a switch and its face is not used. Frames without the
subject get landmarks interpolated linearly between the nearest frames with it (held at the ends).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import cv2
import numpy as np

from pipeline.core.errors import InputError

log = logging.getLogger("pipeline.stages.sketch")
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def cnn_detector_path(predictor: Path) -> Path | None:
    """dlib's MMOD face detector beside the predictor (face-recognition-models ships both)."""
    path = predictor.with_name("mmod_human_face_detector.dat")
    return path if path.is_file() else None


def predictor_path(user_path: str | None = None) -> Path:
    """The 68-landmark model: ``user_path``, else the file inside face-recognition-models."""
    if user_path:
        path = Path(user_path)
        if not path.is_file():
            raise InputError(path, "dlib 68-landmark model not found (sketch.predictor)")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("sketch.predictor", f"dlib's {PREDICTOR_FILE} is needed: pip install -e '.[face]' (it ships "
                                              "in face-recognition-models), or download it from "
                                              "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2, "
                                              "unpack it and set sketch.predictor to its path")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise InputError(path, "face-recognition-models is installed but its 68-landmark model is missing")
    return path


@functools.lru_cache(maxsize=2)
def _models(path: str):
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(path)


@functools.lru_cache(maxsize=1)
def _cnn(path: str):
    import dlib

    return dlib.cnn_face_detection_model_v1(path)


class Box(NamedTuple):
    """A face found by dlib's detector, in pixels (right and bottom included, as dlib's rectangle)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.left + self.right) / 2, (self.top + self.bottom) / 2])

    @property
    def size(self) -> int:
        return max(self.right - self.left, self.bottom - self.top) + 1

    @property
    def area(self) -> int:
        return (self.right - self.left + 1) * (self.bottom - self.top + 1)

    def shift_to(self, other: Box) -> float:
        """How far ``other``'s centre is from this box's, in this box's sizes."""
        return float(np.linalg.norm(other.centre - self.centre)) / self.size


@dataclass
class FrameLandmarks:
    points: np.ndarray | None  # (68, 2) float32, x y in pixels; None where the subject was not found
    faces: int                 # faces detected in the frame
    box: Box | None = None     # the subject's face
    switch: bool = False       # faces found, but none near the subject's: another person's, not used


def find_faces(frame: np.ndarray, predictor: Path) -> list[Box]:
    """The faces in an RGB frame: dlib's HOG detector's, else its CNN detector's."""
    detector, _ = _models(str(predictor))
    rects = list(detector(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 1))
    if not rects and cnn_detector_path(predictor) is not None:
        rects = [found.rect for found in _cnn(str(cnn_detector_path(predictor)))(frame, 1)]
    return [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]


def face_points(frame: np.ndarray, box: Box, predictor: Path) -> np.ndarray:
    """(68, 2) float32 landmarks of the face in ``box``."""
    import dlib

    _, shape_predictor = _models(str(predictor))
    shape = shape_predictor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), dlib.rectangle(*box))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


def detect(frame: np.ndarray, predictor: Path, subject: Box | None = None, max_shift: float = 0.5) -> FrameLandmarks:
    """Landmarks of the subject in an RGB frame: the face nearest to ``subject`` (its face in an
    earlier frame), the largest without one; a switch when that face is more than ``max_shift``
    of the subject's size away."""
    boxes = find_faces(frame, predictor)
    if not boxes:
        return FrameLandmarks(None, 0)
    if subject is None:
        box = max(boxes, key=lambda b: b.area)
    else:
        box = min(boxes, key=subject.shift_to)
        if subject.shift_to(box) > max_shift:
            return FrameLandmarks(None, len(boxes), switch=True)
    return FrameLandmarks(face_points(frame, box, predictor), len(boxes), box)


def track(frames: Iterable[np.ndarray], predictor: Path, max_shift: float = 0.5) -> list[FrameLandmarks]:
    """The subject's landmarks in each frame (see the module's docstring)."""
    found, subject = [], None
    for frame in frames:
        landmarks = detect(frame, predictor, subject, max_shift)
        subject = landmarks.box or subject
        found.append(landmarks)
    return found


def read_json(path: Path, scale: tuple[float, float, float, float] = (1, 1, 0, 0)) -> FrameLandmarks:
    """Given landmarks of one frame: a JSON list of 68 [x, y] points (imaginaire's
    landmarks-dlib68), mapped by ``scale`` (sx, sy, dx, dy) into the frames' pixels; an empty list
    is a frame without a face."""
    import json

    try:
        points = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"not readable landmarks JSON ({err})") from None
    if points == []:
        return FrameLandmarks(None, 0)
    array = np.asarray(points, dtype=object)
    if array.shape[:1] != (68,) or not all(isinstance(p, list) and len(p) >= 2 for p in points):
        raise InputError(path, f"expected a list of 68 [x, y] points (dlib's 68 landmarks), got "
                               f"{len(points) if isinstance(points, list) else type(points).__name__} entries")
    sx, sy, dx, dy = scale
    xy = np.asarray([p[:2] for p in points], np.float32)
    return FrameLandmarks(np.stack([xy[:, 0] * sx + dx, xy[:, 1] * sy + dy], 1).astype(np.float32), 1)


def fill_gaps(found: list[FrameLandmarks], source: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, 68, 2) landmarks with the missing frames interpolated, and the (T,) bool detected mask."""
    detected = np.array([f.points is not None for f in found])
    if not detected.any():
        raise InputError(source, f"no face found in any of its {len(found)} frames (dlib frontal face detector)")
    known = np.nonzero(detected)[0]
    stacked = np.stack([f.points for f in found if f.points is not None])
    points = np.empty((len(found), 68, 2), np.float32)
    for k in range(68):
        for c in range(2):
            points[:, k, c] = np.interp(np.arange(len(found)), known, stacked[:, k, c])
    return points, detected
