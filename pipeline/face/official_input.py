"""The face input that NVIDIA's edge2face_512 model was trained on (sketch style ``official``).

NVIDIA vid2vid's face dataset (data/face_dataset.py, ``--input_nc 15``) gives the generator, per
frame, 15 channels in [0, 1] and the map of the facial parts:

- channel 0, the edge map: the landmark curves, plus Canny edges (scikit-image, on the frame's
  luma) outside the face;
- channels 1-14, one distance map per curve: the L1 distance to that curve divided by 3, capped at
  255, then scaled to [0, 1];
- the parts map (0 background, 1 face, 2 eyebrows, 3 nose, 4 eyes, 5 lips, 6 inner lips): the
  regions whose encoder features make the first frames (model/official.py, FeatureEncoder).

Everything is drawn at the frame's own size on dlib's 68 landmarks (integer pixels, as dlib gives
them) plus 15 points of an upper face: the jaw's inner points mirrored over the line between its
ends at 2/3 of the height. Each curve is drawn in pieces of 3 landmarks, each piece the parabola (a
line for 2 points) through them, sampled along its longer axis and stamped 2x2 pixels wide; a piece
that bends too much (|a| > 1) is left out, as the official code does. Then the square crop
(:func:`crop_box`: 2.5 face widths, centred a quarter of the way down the landmarks) is cut out and
resized: the maps bilinearly, the parts map by nearest neighbour, the frame bicubically (PIL, as the
official code). This module is this project's own implementation of that recipe, checked against
the official code's output (tests/fixtures/official_face_input.npz).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from PIL import Image

# (part label, curves): each curve a list of landmark indices into the 83 points (68 + the upper face)
PARTS: list[tuple[int, list[list[int]]]] = [
    (1, [list(range(0, 17)) + list(range(68, 83)) + [0]]),  # face outline, over the forehead
    (2, [list(range(17, 22))]),  # right eyebrow
    (2, [list(range(22, 27))]),  # left eyebrow
    (3, [[28, 31], list(range(31, 36)), [35, 28]]),  # nose
    (4, [[36, 37, 38, 39], [39, 40, 41, 36]]),  # right eye
    (4, [[42, 43, 44, 45], [45, 46, 47, 42]]),  # left eye
    (5, [list(range(48, 55)), [54, 55, 56, 57, 58, 59, 48]]),  # lips
    (6, [list(range(60, 65)), [64, 65, 66, 67, 60]]),  # inner lips
]
CURVES = sum(len(curves) for _, curves in PARTS)  # 14 distance maps
PART_LABELS = 1 + max(label for label, _ in PARTS)  # 0 (background) .. 6
CHANNELS = ["edges"] + [f"distance_{k}" for k in range(CURVES)] + ["face_parts"]
PIECE = 3  # landmarks per drawn piece of a curve


def with_upper_face(points: np.ndarray) -> np.ndarray:
    """(83, 2): the 68 landmarks and the jaw's points 15..1 mirrored above the line between its ends."""
    jaw = points[:17].astype(np.int32)
    baseline = (jaw[0, 1] + jaw[-1, 1]) / 2
    upper = jaw[1:-1].copy()
    upper[:, 1] = baseline + (baseline - upper[:, 1]) * 2 // 3
    return np.vstack([points, upper[::-1]]).astype(np.float64)


def _piece(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixels of the parabola (line for 2 points) through the points, one per unit of the longer
    axis; None where it bends too much to be a face curve."""
    from scipy.optimize import curve_fit

    if np.abs(np.diff(x)).max() < np.abs(np.diff(y)).max():
        swapped = _piece(y, x)
        return None if swapped is None else (swapped[1], swapped[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(x) < 3:
            coeffs, _ = curve_fit(lambda t, a, b: a * t + b, x, y)
        else:
            coeffs, _ = curve_fit(lambda t, a, b, c: a * t**2 + b * t + c, x, y)
            if abs(coeffs[0]) > 1:
                return None
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
    xs = np.linspace(x[0], x[-1], int(x[-1] - x[0]))
    # evaluated term by term, not by Horner's rule: the pixels are truncated, and a curve through
    # integer points must land where the official code's sum lands
    ys = coeffs[0] * xs + coeffs[1] if len(coeffs) == 2 else coeffs[0] * xs**2 + coeffs[1] * xs + coeffs[2]
    return xs.astype(int), ys.astype(int)


def _stamp(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Set a 2x2 block (up and left of each pixel) to 255, clipped to the image."""
    height, width = image.shape
    for dy in (-1, 0):
        for dx in (-1, 0):
            image[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)] = 255


def draw(points: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(edge map, 14 distance maps, parts map), uint8 at the frame's size, of ``points`` (68, 2) in
    the frame's pixels and ``frame`` (H, W, 3) RGB."""
    from skimage import feature

    height, width = frame.shape[:2]
    keypoints = with_upper_face(np.round(np.asarray(points, np.float64)))
    parts = np.zeros((height, width), np.uint8)
    for label, curves in PARTS:
        polygon = keypoints[sum(curves, [])].astype(np.int32)
        cv2.fillPoly(parts, [polygon], label)
    edges = np.zeros((height, width), np.uint8)
    distances = []
    for _, curves in PARTS:
        for curve in curves:
            alone = np.zeros((height, width), np.uint8)
            for start in range(0, max(1, len(curve) - 1), PIECE - 1):
                piece = curve[start:start + PIECE]
                drawn = _piece(keypoints[piece, 0], keypoints[piece, 1])
                if drawn is not None:
                    _stamp(edges, *drawn)
                    _stamp(alone, *drawn)
            distance = cv2.distanceTransform(255 - alone, cv2.DIST_L1, 3)
            distances.append(np.clip(distance / 3, 0, 255).astype(np.uint8))
    luma = np.asarray(Image.fromarray(frame).convert("L"))
    background = feature.canny(luma) & (parts == 0)
    edges += background.astype(np.uint8) * 255  # uint8: a pixel on both wraps to 254, as in the official code
    return edges, distances, parts


def crop_box(points: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the official square crop around the 68 landmarks of one frame: 2.5 times
    their width, centred between them horizontally and a quarter of the way down vertically, moved
    to stay inside the frame."""
    points = np.round(np.asarray(points, np.float64))
    width, height = frame_size
    min_x, max_x = points[:, 0].min(), points[:, 0].max()
    min_y, max_y = points[:, 1].min(), points[:, 1].max()
    xc, yc = (min_x + max_x) // 2, (min_y * 3 + max_y) // 4
    side = (max_x - min_x) * 2.5
    xc = min(max(0, xc - side // 2) + side, width) - side // 2
    yc = min(max(0, yc - side // 2) + side, height) - side // 2
    return int(xc - side // 2), int(yc - side // 2), int(xc + side // 2), int(yc + side // 2)


def output_size(box: tuple[int, int, int, int], size: int) -> tuple[int, int]:
    """(width, height) of a crop resized to ``size`` wide (the official scaleWidth: the height in
    proportion, both rounded to a multiple of 4, then to a multiple of 32)."""
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    new_w, new_h = size, size * crop_h // crop_w
    new_w, new_h = int(round(new_w / 4)) * 4, int(round(new_h / 4)) * 4
    return int(round(new_w / 32) * 32), int(round(new_h / 32) * 32)


def _resize(image: np.ndarray, box, size, method) -> np.ndarray:
    return np.asarray(Image.fromarray(image).crop(box).resize(size, method))


def face_input(points: np.ndarray, frame: np.ndarray, box: tuple[int, int, int, int], size: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(maps (h, w, 16) uint8: the 15 input channels and the parts map, the frame (h, w, 3) RGB),
    both cut to ``box`` and resized to ``size`` wide, of one frame and its 68 landmarks."""
    edges, distances, parts = draw(points, frame)
    out = output_size(box, size)
    maps = [_resize(m, box, out, Image.BILINEAR) for m in [edges] + distances]
    maps.append(_resize(parts, box, out, Image.NEAREST))
    return np.stack(maps, -1), _resize(frame, box, out, Image.BICUBIC)
