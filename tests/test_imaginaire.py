"""The imaginaire / official-vid2vid layout on small trees written here: street (images + seg_maps),
face (images + landmarks-dlib68, used as given by the sketch stage) and pose (images +
poses-openpose with imaginaire's file names) through their stages to the cache, and malformed
trees named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import datasets
from pipeline.core.errors import InputError
from pipeline.core.images import read_map, write_map, write_rgb
from pipeline.stages import cache, flow, frames, labels, pose, sketch
from tests.conftest import make_dataset

FRAMES = 4


def write_images(layout, seq, size=(96, 64)):
    rng = np.random.default_rng(len(seq))
    folder = layout / "images" / seq
    folder.mkdir(parents=True)
    for i in range(FRAMES):  # imaginaire numbers its frames from 1
        write_rgb(folder / f"{i + 1:06d}.jpg", rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def write_seg_maps(layout, seq, count=FRAMES, size=(96, 64)):
    folder = layout / "seg_maps" / seq
    folder.mkdir(parents=True)
    for i in range(count):
        label = np.full((size[1], size[0]), 7, np.uint8)  # road
        label[: size[1] // 3] = 23  # sky
        label[30:50, 10 + 5 * i : 30 + 5 * i] = 26  # a car that moves
        write_map(folder / f"{i + 1:06d}.png", label)


def _run(ds, *stages, tmp_path):
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    for stage in stages:
        stage.main(args + ["--job-summary", str(tmp_path / f"{stage.__name__}.json")])


def test_street_images_and_seg_maps_in_train_and_val_folders(tmp_path):
    root = tmp_path / "cityscapes"
    for split, seq in (("train", "seq0001"), ("train", "seq0002"), ("val", "seq0003")):
        write_images(root / split, seq)
        write_seg_maps(root / split, seq)
    ds = make_dataset(tmp_path, "imag", adapter="imaginaire", root=str(root), frames={"size": [48, 32]},
                      labels={"mode": "given"}, instances={"mode": "none"}, flow={"mode": "dis"})
    assert [(s.name, s.split) for s in datasets.list_sequences(ds)] == [
        ("seq0001", "train"), ("seq0002", "train"), ("seq0003", "val")]
    _run(ds, labels, flow, tmp_path=tmp_path)
    mapped = read_map(ds.results / "labels" / "seq0003" / "000003.png", np.uint8)
    assert mapped.shape == (32, 48) and set(np.unique(mapped)) == {7, 23, 26}
    header = cache.pack(ds, None, tmp_path / "imag.safetensors")
    assert [(s["name"], s["split"], s["frames"]) for s in header["sequences"]] == [
        ("seq0001", "train", 4), ("seq0002", "train", 4), ("seq0003", "val", 4)]


@pytest.mark.parametrize("max_frames", [None, 3])  # 3: the landmarks of the frames cut off are left out
def test_face_landmarks_are_used_as_given_by_the_sketch_stage(tmp_path, max_frames):
    root = tmp_path / "faces"
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    for seq in ("seq0001", "seq0002"):
        write_images(root, seq, size=(128, 96))
        folder = root / "landmarks-dlib68" / seq
        folder.mkdir(parents=True)
        for i in range(FRAMES):  # 68 points on an ellipse around the image centre, in the source's pixels
            points = np.stack([64 + 20 * np.cos(angles) + i, 48 + 26 * np.sin(angles)], 1)
            (folder / f"{i + 1:06d}.json").write_text(json.dumps(points.tolist()))
    ds = make_dataset(tmp_path, "faces", adapter="imaginaire", task="face", root=str(root), val_videos=["seq0002"],
                      frames={"size": [64, 48], "max_frames": max_frames}, sketch={"mode": "given", "size": 32, "thickness": 1},
                      flow={"mode": "dis"})
    _run(ds, sketch, flow, tmp_path=tmp_path)
    rows = (ds.results / "sketch" / "seq0001" / "landmarks.csv").read_text().splitlines()[1:]
    assert len(rows) == (max_frames or FRAMES)
    first = np.array(rows[0].split(",")[3:], np.float32).reshape(68, 2)
    assert np.allclose(first[0], [(64 + 20) / 2, 48 / 2], atol=0.01)  # scaled like the frames (half size)
    assert cache.pack(ds, None, tmp_path / "faces.safetensors")["condition_channels"] == ["sketch"]


@pytest.mark.parametrize("densepose", [False, True])
def test_openpose_json_with_imaginaires_file_names_drives_the_pose_stage(tmp_path, densepose):
    root = tmp_path / "dancing"
    if densepose:  # the layout's DensePose IUV maps join the pose maps: six condition channels
        iuv = root / "pose_maps-densepose" / "seq0001"
        iuv.mkdir(parents=True)
        for i in range(FRAMES):
            write_rgb(iuv / f"{i + 1:06d}.png", np.full((128, 96, 3), 40 * i, np.uint8))
    write_images(root, "seq0001", size=(96, 128))
    folder = root / "poses-openpose" / "seq0001"
    folder.mkdir(parents=True)
    for i in range(FRAMES):
        body = np.zeros((25, 3))
        body[1], body[8] = [48, 30 + i, 1], [48, 90, 1]  # neck and hip: a standing figure
        (folder / f"{i + 1:06d}.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]}))
    ds = make_dataset(tmp_path, "dance", adapter="imaginaire", task="pose", root=str(root), frames={"size": None},
                      pose={"mode": "openpose-json", "size": [32, 64], "crop_scale": 2.0, "thickness": 2},
                      flow={"mode": "dis"})
    _run(ds, pose, flow, tmp_path=tmp_path)
    summary = json.loads((tmp_path / "pipeline.stages.pose.json").read_text())["sequences"]["seq0001"]
    assert summary["with_person"] == FRAMES
    channels = cache.pack(ds, None, tmp_path / "d.safetensors")["condition_channels"]
    assert channels == ["pose_r", "pose_g", "pose_b"] + (["densepose_i", "densepose_u", "densepose_v"] if densepose else [])


def test_malformed_imaginaire_trees_are_named(tmp_path):
    (tmp_path / "empty" / "downloads").mkdir(parents=True)
    with pytest.raises(InputError, match=r"empty: no images/<seq>/ folder here or under train/, val/ .*\['downloads'\]"):
        datasets.list_sequences(make_dataset(tmp_path, "e", adapter="imaginaire", root=str(tmp_path / "empty")))
    root = tmp_path / "short"
    write_images(root, "seq0001")
    write_seg_maps(root, "seq0001", count=FRAMES - 1)
    ds = make_dataset(tmp_path, "s", adapter="imaginaire", root=str(root), frames={"size": [48, 32]})
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"seg_maps/seq0001: 3 seg_maps files for 4 frames: they are matched"):
        datasets.extract(ds, datasets.list_sequences(ds)[0], tmp_path / "out", None)
    both = tmp_path / "both"
    write_images(both / "train", "seq0001")
    write_images(both / "val", "seq0001")
    with pytest.raises(InputError, match=r"val/images/seq0001: sequence seq0001 is also in .*train/images/seq0001"):
        datasets.list_sequences(make_dataset(tmp_path, "b", adapter="imaginaire", root=str(both)))


def test_landmarks_that_are_not_68_points_are_named(tmp_path):
    from pipeline.face.landmarks import read_json

    path = tmp_path / "000001.json"
    path.write_text(json.dumps([[1, 2]] * 5))
    with pytest.raises(InputError, match=r"000001.json: expected a list of 68 \[x, y\] points .*got 5 entries"):
        read_json(path)
