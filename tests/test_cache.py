"""Given-mode annotation stages, the cache stage and the clip loader, on a small synthcity dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.data import ClipDataset, Expectation, compose_flows
from model.flow_ops import warp
from model.inputs import instance_edges, one_hot_labels
from pipeline.core.arrays import load_npz, save_npz
from pipeline.core.cache_format import CacheError, read_header
from pipeline.core.errors import InputError
from pipeline.core.images import read_map, read_rgb, write_map
from pipeline.datasets import synthcity
from pipeline.stages import cache, frames, labels
from tests.conftest import make_dataset, run_stages, synth_cfg

SEQS = ["synth000_000000", "synth001_000000"]


@pytest.fixture(scope="module")
def packed(small_cache):
    return small_cache


def test_given_stages_reproduce_the_ground_truth(packed):
    ds, _ = packed
    truth_dir = ds.root / "synthcity_gt" / "train" / "synth000"
    np.testing.assert_array_equal(read_map(ds.results / "labels/synth000_000000/000004.png"),
                                  read_map(truth_dir / "synth000_000000_000004_labelIds.png"))
    np.testing.assert_array_equal(read_map(ds.results / "instances/synth000_000000/000004.png", np.uint16),
                                  read_map(truth_dir / "synth000_000000_000004_instanceIds.png", np.uint16))
    stored = load_npz(ds.results / "flow/synth000_000000/flow.npz",
                      ("flow", "confidence", "flow_backward", "confidence_backward"))
    truth = load_npz(truth_dir / "synth000_000000_flow.npz", ("flow", "valid", "flow_backward", "valid_backward"))
    assert stored["flow"].dtype == np.float16 and stored["flow"].shape == (7, 2, 128, 256)
    np.testing.assert_allclose(stored["flow"], truth["flow"], atol=0.05)
    np.testing.assert_allclose(stored["flow_backward"], truth["flow_backward"], atol=0.05)
    np.testing.assert_array_equal(stored["confidence"][:, 0], truth["valid"])
    np.testing.assert_array_equal(stored["confidence_backward"][:, 0], truth["valid_backward"])


def test_given_flow_is_resized_with_the_frames(tmp_path):
    ds = make_dataset(tmp_path, "half", adapter="cityscapes", generate={"synthcity": synth_cfg(train=1, val=0)},
                      frames={"size": [64, 24]})  # cover: scale 0.5 to 64x32, crop rows 4..28
    synthcity.write_sequence(ds.root, synthcity.sequences(ds.synthcity)[0], ds.synthcity)
    run_stages(ds, tmp_path)
    stored = load_npz(ds.results / "flow/synth000_000000/flow.npz", ("flow", "confidence"))["flow"].astype(np.float32)
    assert stored.shape == (7, 2, 24, 64)
    truth = load_npz(ds.root / "synthcity_gt/train/synth000/synth000_000000_flow.npz", ("flow",))["flow"]
    # a smooth region (the road, lower middle) halves its flow vectors
    np.testing.assert_allclose(stored[3, :, 18, 28:36].mean(1), truth[3, :, 44, 56:72].mean(1) * 0.5, rtol=0.1, atol=0.1)
    assert read_map(ds.results / "labels/synth000_000000/000000.png").shape == (24, 64)


def test_pack_then_load_equals_the_stage_outputs(packed):
    ds, shard = packed
    header = read_header(shard)
    assert [s["name"] for s in header["sequences"]] == SEQS
    assert header["dataset"] == "demo" and header["num_label_ids"] == 34
    assert header["stage_modes"] == {"labels": "given", "instances": "given", "flow": "given"}
    assert all(s["sources"]["frames"] and s["sources"]["flow"] for s in header["sequences"])
    from safetensors.numpy import load_file

    tensors = load_file(str(shard))
    for seq in SEQS:
        for i in range(8):
            np.testing.assert_array_equal(tensors[f"{seq}/frames"][i], read_rgb(ds.results / f"frames/{seq}/{i:06d}.png"))
            np.testing.assert_array_equal(tensors[f"{seq}/labels"][i], read_map(ds.results / f"labels/{seq}/{i:06d}.png"))
            np.testing.assert_array_equal(tensors[f"{seq}/instances"][i],
                                          read_map(ds.results / f"instances/{seq}/{i:06d}.png", np.uint16))
        stored = load_npz(ds.results / f"flow/{seq}/flow.npz",
                          ("flow", "confidence", "flow_backward", "confidence_backward"))
        for key in ("flow", "flow_backward"):
            np.testing.assert_array_equal(tensors[f"{seq}/{key}"], stored[key])
        for key in ("confidence", "confidence_backward"):
            np.testing.assert_array_equal(tensors[f"{seq}/{key}"], np.rint(stored[key][:, 0].astype(np.float32) * 255))
    # the loader without augmentation returns exactly the cached clip
    clips = ClipDataset([shard], n_frames=8, crop=None, flip=False, split=None)
    clip = clips[0]
    assert clip["start"] == 0 and clip["step"] == 1
    np.testing.assert_array_equal(clip["frames"].permute(0, 2, 3, 1).numpy(), tensors[f"{SEQS[0]}/frames"])
    np.testing.assert_array_equal(clip["labels"].numpy(), tensors[f"{SEQS[0]}/labels"])
    np.testing.assert_array_equal(clip["instances"].numpy(), tensors[f"{SEQS[0]}/instances"])
    np.testing.assert_array_equal(clip["flow"].numpy(), tensors[f"{SEQS[0]}/flow"].astype(np.float32))
    np.testing.assert_array_equal(clip["flow_backward"].numpy(), tensors[f"{SEQS[0]}/flow_backward"].astype(np.float32))


def _warp_error(clip, t, backward=False):
    """Mean error of frame t predicted from frame t+1 through the clip's forward flow (or of frame
    t+1 predicted from frame t through the backward flow), on confident pixels."""
    source, target = (t, t + 1) if backward else (t + 1, t)
    key = "flow_backward" if backward else "flow"
    predicted = warp(clip["frames"][source : source + 1].float(), clip[key][t : t + 1])[0]
    mask = clip["confidence_backward" if backward else "confidence"][t, 0] > 0.99
    error = (predicted - clip["frames"][target].float()).abs().mean(0)
    unwarped = (clip["frames"][source].float() - clip["frames"][target].float()).abs().mean(0)
    return error[mask].mean().item(), unwarped[mask].mean().item(), mask.float().mean().item()


def _mean_warp_error(clips, epochs=3, backward=False):
    errors = []
    for index in range(len(clips)):
        for epoch in range(epochs):
            clips.set_epoch(epoch)
            clip = clips[index]
            errors.append(_warp_error(clip, 0, backward))
    error, unwarped, coverage = np.mean(errors, axis=0)
    return error, unwarped, coverage


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("scale", [(0.75, 0.75), (1.3, 1.3), (0.8, 1.25)])
def test_augmentation_keeps_flow_consistent(packed, scale, backward):
    """Frame t+1 warped by the transformed flow matches the transformed frame t as well as without
    augmentation (scaling, cropping and flipping every channel alike keeps flow and frames in step)."""
    _, shard = packed
    base = _mean_warp_error(ClipDataset([shard], n_frames=2, crop=None, flip=False, split=None), 1, backward)
    clips = ClipDataset([shard], n_frames=3, crop=(192, 96), scale=scale, flip=True, seed=3, split=None)
    assert clips[0]["frames"].shape == (3, 3, 96, 192) and clips[0]["flow"].shape == (2, 2, 96, 192)
    error, unwarped, coverage = _mean_warp_error(clips, backward=backward)
    assert coverage > 0.4
    assert error < 0.6 * unwarped, (error, unwarped)
    assert error < 1.5 * base[0] + 0.5, (error, base)


def test_flip_negates_flow_x(packed):
    _, shard = packed
    plain = ClipDataset([shard], n_frames=2, crop=None, flip=False, split=None)[0]
    for seed in range(20):
        clip = ClipDataset([shard], n_frames=2, crop=None, flip=True, seed=seed, split=None)[0]
        if clip["start"] == plain["start"] and not torch.equal(clip["frames"], plain["frames"]):
            assert torch.equal(clip["frames"], plain["frames"].flip(-1))
            assert torch.equal(clip["flow"][:, 0], -plain["flow"][:, 0].flip(-1))
            assert torch.equal(clip["flow"][:, 1], plain["flow"][:, 1].flip(-1))
            return
    pytest.fail("no flipped clip with the same start in 20 seeds")


def test_strided_clips_compose_flow(packed):
    _, shard = packed
    clips = ClipDataset([shard], n_frames=3, max_t_step=3, crop=None, flip=False, seed=5, split=None)
    steps = set()
    for epoch in range(8):
        clips.set_epoch(epoch)
        clip = clips[0]
        steps.add(clip["step"])
        for backward in (False, True):
            error, unwarped, _ = _warp_error(clip, 0, backward)
            assert error < 0.6 * unwarped, (clip["step"], backward, error, unwarped)
    assert steps - {1}, steps  # strides above 1 were drawn


def test_compose_flows_of_constant_shifts_adds_them():
    flows = np.zeros((3, 2, 8, 8), np.float32)
    flows[:, 0] = 1.0
    flows[1, 1] = 0.5
    confidences = np.ones((3, 8, 8), np.float32)
    confidences[2, :, 6:] = 0.0  # the last step is unsure on the right: composed, it is unsure 3 px left
    total, conf = compose_flows(flows, confidences)
    np.testing.assert_allclose(total[0], 3.0)
    np.testing.assert_allclose(total[1], 0.5)
    assert conf[:, :4].min() == 1.0 and conf[:, 4:].max() == 0.0


def test_loader_is_deterministic_across_workers_and_samplers(packed):
    _, shard = packed
    clips = ClipDataset([shard], n_frames=3, max_t_step=2, crop=(64, 32), scale=(0.8, 1.2), seed=11, split=None)
    serial = [clips[i] for i in range(len(clips))]
    loader = torch.utils.data.DataLoader(clips, batch_size=1, num_workers=2, shuffle=False)
    for batch, expected in zip(loader, serial):
        assert torch.equal(batch["frames"][0], expected["frames"]) and torch.equal(batch["flow"][0], expected["flow"])
    ranks = [list(torch.utils.data.DistributedSampler(clips, num_replicas=2, rank=r, shuffle=True, seed=0))
             for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == [0, 1]
    clips.set_epoch(1)
    assert not torch.equal(clips[0]["frames"], serial[0]["frames"]) or clips[0]["start"] != serial[0]["start"]


def test_one_hot_and_edges_on_device_inputs():
    labels = torch.tensor([[7, 7, 26], [7, 26, 26]], dtype=torch.uint8)
    one_hot = one_hot_labels(labels)
    assert one_hot.shape == (34, 2, 3) and one_hot[7].sum() == 3 and one_hot[26].sum() == 3
    edges = instance_edges(torch.tensor([[7, 7, 26000], [7, 7, 26000]]))
    assert edges.shape == (1, 2, 3) and edges[0, :, 1:].all() and not edges[0, :, 0].any()


def test_header_mismatch_and_corrupt_shard(packed, tmp_path):
    _, shard = packed
    with pytest.raises(CacheError, match=r"cache header dataset is 'demo', but the config expects 'cityscapes'"):
        ClipDataset([shard], expect=Expectation(dataset="cityscapes"), split=None)
    with pytest.raises(CacheError, match=r"num_label_ids is 34, but the config expects 20"):
        ClipDataset([shard], expect=Expectation(num_label_ids=20), split=None)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(CacheError, match=r"broken.safetensors: corrupt or truncated cache shard"):
        ClipDataset([broken], split=None)
    with pytest.raises(InputError, match=r"broken.safetensors: corrupt or truncated cache shard"):
        read_header(broken)


def _flip_a_byte_of(shard, tensor, target):
    """A copy of the shard with one byte of one tensor's data flipped (the layout stays valid)."""
    data = bytearray(shard.read_bytes())
    length = int.from_bytes(data[:8], "little")
    begin, end = json.loads(data[8:8 + length])[tensor]["data_offsets"]
    data[8 + length + (begin + end) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_a_flipped_bit_in_a_shard_is_caught_by_every_reader(packed, tmp_path, monkeypatch):
    from model.synthesis import sequence_inputs
    from pipeline.core.cache_format import CacheShard

    _, shard = packed
    assert CacheShard(shard).tensor("synth000_000000", "frames").shape[0] == 8  # intact: reads
    flipped = _flip_a_byte_of(shard, "synth000_000000/frames", tmp_path / "flipped.safetensors")
    read_header(flipped)  # the layout is intact: only the checksum can tell
    message = r"flipped.safetensors: tensor synth000_000000/frames fails its CRC-32 check.*make it again with `snakemake --cores 2 --force .*flipped.safetensors`"
    with pytest.raises(CacheError, match=message):
        CacheShard(flipped).tensor("synth000_000000", "frames")
    with pytest.raises(CacheError, match=message):  # the trainer's loader
        ClipDataset([flipped], n_frames=3, split="train")[0]
    with pytest.raises(CacheError, match=message):  # synthesis
        name, n, labels, instances, frame_at = next(sequence_inputs([str(flipped)], "train"))
        frame_at("frames", 0)
    assert CacheShard(flipped).tensor("synth001_000000", "frames").shape[0] == 8  # the other tensors read


def test_packing_reports_every_problem_with_its_file(packed, tmp_path):
    ds, _ = packed
    label = ds.results / "labels/synth000_000000/000002.png"
    original_label = label.read_bytes()
    flow_file = ds.results / "flow/synth001_000000/flow.npz"
    original_flow = flow_file.read_bytes()
    missing = ds.results / "instances/synth001_000000/000006.png"
    original_missing = missing.read_bytes()
    try:
        write_map(label, np.full((128, 256), 40, np.uint8))
        stored = load_npz(flow_file, ("flow", "confidence", "flow_backward", "confidence_backward"))
        stored["flow"][3, 0, 5, 5] = np.nan
        save_npz(flow_file, **stored)
        missing.unlink()
        out = tmp_path / "bad.safetensors"
        with pytest.raises(InputError) as info:
            cache.pack(ds, None, out)
        message = str(info.value)
        assert "3 problem(s)" in message
        assert "labels/synth000_000000/000002.png: label ids [40] outside the label set 0..33" in message
        assert "flow/synth001_000000/flow.npz: flow is NaN/inf at frame pairs [3]" in message
        assert "instances/synth001_000000/000006.png: map file does not exist" in message
        assert not out.exists()
    finally:
        label.write_bytes(original_label)
        flow_file.write_bytes(original_flow)
        missing.write_bytes(original_missing)


def test_given_labels_out_of_range_are_refused(tmp_path):
    ds = make_dataset(tmp_path, "bad", adapter="cityscapes", generate={"synthcity": synth_cfg(train=1, val=0)})
    synthcity.write_sequence(ds.root, synthcity.sequences(ds.synthcity)[0], ds.synthcity)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    gt = ds.root / "synthcity_gt/train/synth000/synth000_000000_000003_labelIds.png"
    write_map(gt, np.full((64, 128), 255, np.uint8))
    args = ["--dataset", "bad", "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    with pytest.raises(SystemExit) as info:
        labels.main(args)
    assert info.value.code == 2
    assert not (ds.results / "labels" / "synth000_000000").exists()


def test_dis_flow_mode_against_synthcity_ground_truth(tmp_path):
    """OpenCV DIS (no weights): end-point error on non-occluded pixels, and its forward-backward
    consistency against the exact visibility mask."""
    ds = make_dataset(tmp_path, "dis", adapter="cityscapes",
                      generate={"synthcity": synth_cfg(train=1, val=0, size=[256, 128])},
                      frames={"size": [256, 128]}, flow={"mode": "dis", "preset": "medium"})
    synthcity.write_sequence(ds.root, synthcity.sequences(ds.synthcity)[0], ds.synthcity)
    run_stages(ds, tmp_path)
    estimated = load_npz(ds.results / "flow/synth000_000000/flow.npz",
                         ("flow", "confidence", "flow_backward", "confidence_backward"))
    truth = load_npz(ds.root / "synthcity_gt/train/synth000/synth000_000000_flow.npz",
                     ("flow", "valid", "flow_backward", "valid_backward"))
    for key, valid_key in (("flow", "valid"), ("flow_backward", "valid_backward")):
        epe = np.linalg.norm(estimated[key].astype(np.float32) - truth[key], axis=1)
        valid = truth[valid_key].astype(bool)
        print(f"\nDIS medium, {key}: EPE {epe[valid].mean():.2f} px on non-occluded pixels "
              f"(mean motion {np.linalg.norm(truth[key], axis=1)[valid].mean():.2f} px)")
        assert epe[valid].mean() < 1.5
    consistent = estimated["confidence"][:, 0].astype(bool)
    assert consistent.mean() > 0.6 and (consistent & truth["valid"].astype(bool)).sum() / consistent.sum() > 0.9
