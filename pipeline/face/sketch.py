"""Drawing the edge-to-face input: landmarks connected into a sketch, plus Canny edges of the real
frame outside the face, as the official vid2vid edge2face data (data/face_dataset.py) does.

Parts (dlib 68-point indices): the face outline (jaw 0-16 and an upper-face arc mirrored from the
jaw over the line between its ends, scaled by 2/3, as the official code estimates the forehead),
eyebrows 17-21 / 22-26, nose bridge 27-30 and base 31-35, eyes 36-41 / 42-47 as closed curves,
outer lips 48-59 and inner lips 60-67 as closed curves. Each part is drawn as a smooth curve
(Catmull-Rom through its points), ``thickness`` px wide. Canny edges are kept only outside the
filled face outline. The crop is one square per sequence around the median landmark box, scaled
by ``crop_scale``: stable over the whole video.
"""

from __future__ import annotations

import cv2
import numpy as np

OPEN_PARTS = [list(range(17, 22)), list(range(22, 27)), [27, 28, 29, 30], list(range(31, 36))]
CLOSED_PARTS = [list(range(36, 42)), list(range(42, 48)), list(range(48, 60)), list(range(60, 68))]


def upper_face(points: np.ndarray) -> np.ndarray:
    """An arc over the forehead: the jaw (0..16) mirrored over the line from point 0 to 16, 2/3 as high."""
    jaw = points[:17]
    a, b = jaw[0], jaw[-1]
    axis = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    normal = np.array([-axis[1], axis[0]])
    offset = (jaw - a) @ normal
    return (jaw - (1 + 2 / 3) * offset[:, None] * normal[None])[::-1]


def face_outline(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points[:17], upper_face(points)[1:-1]])


def catmull_rom(points: np.ndarray, closed: bool, samples: int = 6) -> np.ndarray:
    """A smooth curve through ``points`` (N, 2)."""
    pts = np.concatenate([points[-1:], points, points[:2]]) if closed else \
        np.concatenate([points[:1], points, points[-1:]])
    segments = len(points) if closed else len(points) - 1
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    curve = []
    for i in range(segments):
        p0, p1, p2, p3 = pts[i], pts[i + 1], pts[i + 2], pts[i + 3]
        curve.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                            + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    curve.append(pts[segments + 1][None])
    return np.concatenate(curve)


def draw_sketch(points: np.ndarray, frame: np.ndarray | None, size: tuple[int, int], thickness: int = 2,
                canny: tuple[int, int] = (60, 140)) -> np.ndarray:
    """(H, W) uint8 sketch, 255 on lines, of landmarks ``points`` (68, 2) in a ``size`` = (W, H)
    image; Canny edges of ``frame`` (RGB, same size) outside the face when given."""
    width, height = size
    sketch = np.zeros((height, width), np.uint8)
    if frame is not None:
        edges = cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), *canny)
        face = np.zeros_like(sketch)
        cv2.fillPoly(face, [np.round(face_outline(points)).astype(np.int32)], 255)
        sketch[(edges > 0) & (face == 0)] = 255
    parts = [(face_outline(points), True)] + [(points[p], False) for p in OPEN_PARTS] + \
            [(points[p], True) for p in CLOSED_PARTS]
    for part, closed in parts:
        curve = np.round(catmull_rom(part, closed) * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(sketch, [curve], closed, 255, thickness, lineType=cv2.LINE_8, shift=4)
    return sketch


def sequence_crop(points: np.ndarray, frame_size: tuple[int, int], scale: float) -> tuple[int, int, int]:
    """(x0, y0, side) of one square crop for the whole sequence: around the median landmark box,
    ``scale`` times its larger side, moved (then shrunk if needed) to stay inside the frame."""
    width, height = frame_size
    lo, hi = np.median(points.min(axis=1), axis=0), np.median(points.max(axis=1), axis=0)
    center = (lo + hi) / 2
    center[1] -= 0.1 * (hi[1] - lo[1])  # landmarks start at the eyebrows: centre a little higher
    side = int(round(min(scale * float((hi - lo).max()), width, height)))
    x0 = int(round(np.clip(center[0] - side / 2, 0, width - side)))
    y0 = int(round(np.clip(center[1] - side / 2, 0, height - side)))
    return x0, y0, side


def crop_landmarks(points: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    """Landmarks (..., 2) in the frame's pixels moved into the square ``crop`` (x0, y0, side) resized
    to ``size`` x ``size``: the sketch's and the synthesized face's pixels."""
    x0, y0, side = crop
    return (points - np.array([x0, y0], np.float32)) * (size / side)
