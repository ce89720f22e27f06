"""Reading OpenPose's per-frame JSON (``--write_json``): ``<name>_<frame:012d>_keypoints.json``
with ``people[].pose_keypoints_2d`` (BODY_25: 75 numbers), ``hand_left/right_keypoints_2d`` (63)
and ``face_keypoints_2d`` (210), the files users of the official vid2vid code already have.

Of several people the one with the largest keypoint box is kept (counted). A malformed file stops
with its name and what is wrong; a frame without people gives no keypoints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import InputError

FRAME_NUMBER = re.compile(r"_(\d{12})_keypoints\.json$")
SIZES = {"pose_keypoints_2d": 25, "hand_left_keypoints_2d": 21, "hand_right_keypoints_2d": 21, "face_keypoints_2d": 70}


@dataclass
class PersonKeypoints:
    body: np.ndarray | None          # (25, 3) x, y, confidence
    hands: list                      # [(21, 3) or None, (21, 3) or None]
    face: np.ndarray | None          # (70, 3)
    people: int = 0                  # people in the frame

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> "PersonKeypoints":
        """The keypoints after the frame was scaled by (sx, sy) and then shifted by (dx, dy)."""
        def move(points):
            if points is None:
                return None
            out = points.copy()
            out[:, 0] = out[:, 0] * sx + dx
            out[:, 1] = out[:, 1] * sy + dy
            return out

        return PersonKeypoints(move(self.body), [move(h) for h in self.hands], move(self.face), self.people)


def _array(person: dict, key: str, path: Path) -> np.ndarray | None:
    values = person.get(key)
    if values is None or len(values) == 0:
        return None
    if not isinstance(values, list) or len(values) != 3 * SIZES[key] or \
            not all(isinstance(v, (int, float)) for v in values):
        raise InputError(path, f"{key}: expected {3 * SIZES[key]} numbers (x, y, confidence for "
                               f"{SIZES[key]} points), got {len(values) if isinstance(values, list) else type(values).__name__}")
    return np.asarray(values, np.float32).reshape(SIZES[key], 3)


def read_frame(path: Path) -> PersonKeypoints:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"not readable OpenPose JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise InputError(path, "not OpenPose JSON: expected an object with a 'people' list")
    people = []
    for person in data["people"]:
        if not isinstance(person, dict):
            raise InputError(path, "a 'people' entry is not an object")
        body = _array(person, "pose_keypoints_2d", path)
        hands = [_array(person, "hand_left_keypoints_2d", path), _array(person, "hand_right_keypoints_2d", path)]
        people.append(PersonKeypoints(body, hands, _array(person, "face_keypoints_2d", path)))
    if not people:
        return PersonKeypoints(None, [None, None], None, 0)

    def extent(p: PersonKeypoints) -> float:
        if p.body is None or (p.body[:, 2] > 0).sum() < 2:
            return 0.0
        pts = p.body[p.body[:, 2] > 0, :2]
        return float(np.prod(pts.max(0) - pts.min(0) + 1))

    chosen = max(people, key=extent)
    chosen.people = len(people)
    return chosen


def frame_files(folder: Path, count: int, at_least: bool = False) -> list[Path | None]:
    """The JSON file of each of ``count`` frames: by OpenPose's 12-digit frame number (None where
    absent), or, for files named otherwise (imaginaire's 000001.json ..), one per frame in sorted
    order (pipeline.datasets.files_in_order; ``at_least``: more files than frames are allowed)."""
    from pipeline.datasets import files_in_order

    if not folder.is_dir():
        raise InputError(folder, "no OpenPose JSON folder for this sequence (pose.openpose_dir/<seq>/)")
    files: list[Path | None] = [None] * count
    for path in folder.glob("*_keypoints.json"):
        match = FRAME_NUMBER.search(path.name)
        if match and int(match.group(1)) < count:
            files[int(match.group(1))] = path
    if any(files):
        return files
    return files_in_order(folder, {".json"}, count, "OpenPose JSON (not named by frame number)", at_least)
