"""The OpenPose BODY_25 skeleton and its rendering into a pose map (OpenPose's colours), plus the
hand (21 points) and face (70 points) keypoints where a backend gives them.

Keypoints are arrays (K, 3): x, y in pixels and a confidence; a point with confidence <=
``threshold`` is absent, and so is every limb that touches it. COCO-17 keypoints (torchvision's
Keypoint R-CNN) and MediaPipe's 33 landmarks map onto BODY_25 (neck and mid-hip as midpoints).
"""

from __future__ import annotations

import cv2
import numpy as np

# BODY_25 limbs, in OpenPose's rendering order, with OpenPose's colours (RGB)
LIMBS = [(1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
         (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22),
         (22, 23), (11, 24)]
COLOURS = [(255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
           (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
           (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255), (0, 0, 255),
           (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255)]
HAND_LIMBS = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
NUM_BODY = 25

# COCO-17 (torchvision) index of each BODY_25 point (None: derived or absent)
COCO_TO_BODY25 = {0: 0, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 9: 12, 10: 14, 11: 16, 12: 11, 13: 13, 14: 15,
                  15: 2, 16: 1, 17: 4, 18: 3}
# MediaPipe Pose (33) index of each BODY_25 point
MEDIAPIPE_TO_BODY25 = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 9: 24, 10: 26, 11: 28, 12: 23, 13: 25,
                       14: 27, 15: 5, 16: 2, 17: 8, 18: 7, 19: 31, 21: 29, 22: 32, 24: 30}


def _with_midpoints(body: np.ndarray, left_shoulder: int, right_shoulder: int, left_hip: int,
                    right_hip: int, source: np.ndarray) -> np.ndarray:
    for target, (a, b) in ((1, (left_shoulder, right_shoulder)), (8, (left_hip, right_hip))):
        if min(source[a, 2], source[b, 2]) > 0:
            body[target] = [(source[a, 0] + source[b, 0]) / 2, (source[a, 1] + source[b, 1]) / 2,
                            min(source[a, 2], source[b, 2])]
    return body


def from_coco17(points: np.ndarray) -> np.ndarray:
    body = np.zeros((NUM_BODY, 3), np.float32)
    for target, source in COCO_TO_BODY25.items():
        body[target] = points[source]
    return _with_midpoints(body, 5, 6, 11, 12, points)


def from_mediapipe33(points: np.ndarray) -> np.ndarray:
    body = np.zeros((NUM_BODY, 3), np.float32)
    for target, source in MEDIAPIPE_TO_BODY25.items():
        body[target] = points[source]
    return _with_midpoints(body, 11, 12, 23, 24, points)


def render(size: tuple[int, int], body: np.ndarray | None, hands: list[np.ndarray] = (),
           face: np.ndarray | None = None, thickness: int = 4, threshold: float = 0.05) -> np.ndarray:
    """(H, W, 3) uint8 pose map of one person: limbs as OpenPose draws them, joints as discs."""
    width, height = size
    canvas = np.zeros((height, width, 3), np.uint8)
    if body is None:
        return canvas
    present = body[:, 2] > threshold
    for (a, b), colour in zip(LIMBS, COLOURS):
        if present[a] and present[b]:
            cv2.line(canvas, tuple(np.round(body[a, :2]).astype(int)), tuple(np.round(body[b, :2]).astype(int)),
                     colour, thickness, cv2.LINE_AA)
    for k in np.nonzero(present)[0]:
        cv2.circle(canvas, tuple(np.round(body[k, :2]).astype(int)), thickness, COLOURS[k], -1, cv2.LINE_AA)
    for hand in hands:
        if hand is None:
            continue
        for index, (a, b) in enumerate(HAND_LIMBS):
            if hand[a, 2] > threshold and hand[b, 2] > threshold:
                hue = int(180 * index / len(HAND_LIMBS))
                colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
                cv2.line(canvas, tuple(np.round(hand[a, :2]).astype(int)), tuple(np.round(hand[b, :2]).astype(int)),
                         colour, max(1, thickness // 2), cv2.LINE_AA)
    if face is not None:
        for x, y, c in face:
            if c > threshold:
                cv2.circle(canvas, (int(round(x)), int(round(y))), max(1, thickness // 3), (255, 255, 255), -1)
    return canvas


def person_crop(bodies: list[np.ndarray | None], frame_size: tuple[int, int], aspect: float, scale: float = 1.2,
                threshold: float = 0.05) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) of one crop for the whole sequence, of the output's aspect (w / h), centred on
    where the person goes: the 2nd..98th percentile extent of their keypoint boxes over the
    sequence, times ``scale``, kept inside the frame (stable: no per-frame jitter)."""
    width, height = frame_size
    boxes = []
    for body in bodies:
        if body is not None and (body[:, 2] > threshold).sum() >= 2:
            pts = body[body[:, 2] > threshold, :2]
            boxes.append([*pts.min(0), *pts.max(0)])
    if not boxes:
        return 0, 0, width, height
    boxes = np.array(boxes)
    x0, y0 = np.percentile(boxes[:, 0], 2), np.percentile(boxes[:, 1], 2)
    x1, y1 = np.percentile(boxes[:, 2], 98), np.percentile(boxes[:, 3], 98)
    crop_h = min(height, width / aspect, max(scale * (y1 - y0), scale * (x1 - x0) / aspect, 16.0))
    crop_w = crop_h * aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(np.clip(cx - crop_w / 2, 0, width - crop_w)))
    top = int(round(np.clip(cy - crop_h / 2, 0, height - crop_h)))
    return left, top, int(round(crop_w)), int(round(crop_h))
