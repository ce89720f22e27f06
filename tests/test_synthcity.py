"""synthcity ground truth checked against itself: flow warps frames, maps agree, seeds reproduce."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from pipeline.core.arrays import load_npz
from pipeline.core.cityscapes_labels import ID, THING_IDS, semantic_from_instance_ids
from pipeline.core.images import read_map, read_rgb
from pipeline.datasets import synthcity
from pipeline.datasets.synthcity.render import render_sequence
from pipeline.datasets.synthcity.scene import (
    GLASS,
    _add_car,
    _add_cyclist,
    _Builder,
    build_scene,
)
from pipeline.flow.warp import photometric_error, warp_next_to_current
from tests.conftest import synth_cfg


@pytest.fixture(scope="module")
def rendered():
    """12 frames at 256x128 (the demo's size): [(frame, flow, valid)]."""
    return list(render_sequence(build_scene(seed=7, width=256, height=128, num_frames=12)))


def test_flow_warps_next_frame_onto_current_frame(rendered):
    errors, fractions = [], []
    for (frame, flow, valid), (nxt, _, _) in zip(rendered[:-1], rendered[1:]):
        errors.append(photometric_error(frame.rgb, nxt.rgb, flow, valid))
        fractions.append(valid.mean())
        # without the flow the same pixels differ far more: the flow carries the motion
        unwarped = np.abs(nxt.rgb.astype(np.float32) - frame.rgb).mean(-1)[valid].mean()
        assert unwarped > 2 * errors[-1]
    print(f"\nsynthcity 256x128: mean photometric error after warping {np.mean(errors):.2f} / 255 "
          f"on {np.mean(fractions):.1%} non-occluded pixels")
    assert np.mean(errors) < 3.0
    assert np.mean(fractions) > 0.7


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_trucks_and_buses_differ_in_front_and_behind(direction):
    """Trucks and buses must not be the same box (a segmenter could not tell them apart): a truck is
    a low cab with a windscreen ahead of a taller windowless cargo box, a bus shows glass at both
    ends."""
    def glass_at_ends(kind):
        builder = _Builder()
        _add_car(builder, np.random.default_rng(0), 0.0, 20.0, 0.5 * direction, kind)
        prims, objects = builder.build()
        assert set(objects.label) == {ID[kind]}
        glass = prims.material == GLASS
        ahead = prims.hi[:, 2] if direction > 0 else -prims.lo[:, 2]
        behind = -prims.lo[:, 2] if direction > 0 else prims.hi[:, 2]
        return (glass & (ahead >= ahead.max() - 1e-9)).any(), (glass & (behind >= behind.max() - 1e-9)).any(), prims
    front, rear, truck = glass_at_ends("truck")
    assert front and not rear
    tallest = truck.hi[:, 1].argmax()
    assert truck.material[tallest] != GLASS and truck.hi[tallest, 1] > truck.hi[truck.material == GLASS, 1].max() + 0.5
    assert glass_at_ends("bus")[:2] == (True, True)


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_cyclists_are_riders_on_bicycles_as_cityscapes_draws_them(direction):
    """A rider has legs down to the pedals, a head above the handlebars and arms reaching them; a
    bicycle two wheels on the ground and handlebars wider than its frame, at the front."""
    builder = _Builder()
    _add_cyclist(builder, np.random.default_rng(0), 0.0, 20.0, 0.3 * direction)
    prims, objects = builder.build()
    assert list(objects.label) == [ID["bicycle"], ID["rider"]]
    bike, rider = prims.obj == 0, prims.obj == 1
    assert prims.lo[rider, 1].min() < 0.5 and prims.hi[rider, 1].max() > 1.6
    wheels = bike & (prims.lo[:, 1] == 0.0)
    assert wheels.sum() == 2 and np.ptp(prims.center[wheels, 2]) > 0.8
    width = prims.hi[:, 0] - prims.lo[:, 0]
    bars = np.flatnonzero(bike)[width[bike].argmax()]
    assert width[bars] > 0.5 and (prims.center[bars, 2] - 20.0) * direction > 0.3
    arms_reach = prims.hi[rider, 2].max() if direction > 0 else -prims.lo[rider, 2].min()
    assert arms_reach >= (prims.hi[bars, 2] if direction > 0 else -prims.lo[bars, 2]) - 0.1


def test_every_street_has_cyclists_both_ways():
    for seed in range(6):
        objects = build_scene(seed=seed, width=256, height=128, num_frames=12).objects
        riders = objects.velocity[objects.label == ID["rider"], 2]
        assert (riders < 0).any() and len(riders) == (objects.label == ID["bicycle"]).sum()


def test_warped_labels_agree_on_valid_pixels(rendered):
    for (frame, flow, valid), (nxt, _, _) in zip(rendered[:-1], rendered[1:]):
        map_x = np.rint(np.arange(256)[None, :] + flow[0]).clip(0, 255).astype(int)
        map_y = np.rint(np.arange(128)[:, None] + flow[1]).clip(0, 127).astype(int)
        agree = nxt.label[map_y, map_x] == frame.label
        assert agree[valid].mean() > 0.995


def test_maps_agree_in_shape_and_boundaries(rendered):
    for frame, flow, valid in rendered[:-1]:
        h, w = frame.label.shape
        assert frame.rgb.shape == (h, w, 3) and frame.instance.shape == (h, w) and frame.depth.shape == (h, w)
        assert flow.shape == (2, h, w) and valid.shape == (h, w) and np.isfinite(flow).all()
        # instance ids encode the labels: class*1000+k for things, the class id otherwise
        np.testing.assert_array_equal(semantic_from_instance_ids(frame.instance), frame.label)
        things = np.isin(frame.label, THING_IDS)
        assert (frame.instance[things] >= 1000).all() and (frame.instance[~things] < 1000).all()
        # every label boundary is an instance boundary
        for axis in (0, 1):
            label_edge = np.diff(frame.label.astype(int), axis=axis) != 0
            instance_edge = np.diff(frame.instance, axis=axis) != 0
            assert not (label_edge & ~instance_edge).any()
        # flow jumps only where the surface changes (instance boundary or a depth step)
        depth = np.where(np.isfinite(frame.depth), frame.depth, 1e4)
        speed = np.abs(flow).max(0)
        surface_edge = np.zeros((h, w), bool)
        jump = np.zeros((h, w), bool)
        for axis in (0, 1):
            pad = ((0, 1), (0, 0)) if axis == 0 else ((0, 0), (0, 1))
            inst = np.diff(frame.instance, axis=axis) != 0
            step = np.abs(np.diff(depth, axis=axis)) > 0.02 * np.minimum(
                np.delete(depth, 0, axis), np.delete(depth, -1, axis))
            surface_edge |= np.pad(inst | step, pad)
            delta = np.abs(np.diff(flow, axis=axis + 1)).max(0)
            jump |= np.pad(delta > 1.0 + 0.1 * np.delete(speed, -1, axis), pad)
        near_edge = ndimage.binary_dilation(surface_edge, iterations=1)
        assert (jump & ~near_edge).sum() <= 0.001 * h * w


def test_scene_has_moving_objects_and_occlusions(rendered):
    labels = np.stack([f.label for f, _, _ in rendered])
    for name_id in (7, 8, 11, 21, 23, 26):  # road, sidewalk, building, vegetation, sky, car
        assert (labels == name_id).any(), name_id
    occluded = [1 - valid.mean() for _, _, valid in rendered[:-1]]
    assert max(occluded) > 0.01  # objects move in front of each other / leave the view
    moving = [f.obj >= 0 for f, _, _ in rendered]
    cars = [(f.label == 26) for f, _, _ in rendered]
    assert any(c.any() for c in cars) and any(m.any() for m in moving)


def test_zero_motion_flow_is_zero():
    scene = build_scene(seed=1, width=64, height=32, num_frames=3)
    scene.camera.position[:] = scene.camera.position[0]
    scene.camera.yaw[:] = 0.0
    scene.objects.velocity[:] = 0.0
    (f0, flow, valid), (f1, _, _), _ = list(render_sequence(scene))
    np.testing.assert_allclose(flow, 0.0, atol=1e-3)
    np.testing.assert_array_equal(f0.rgb, f1.rgb)
    assert valid.all()


def test_known_camera_translation_gives_expected_flow():
    """Pure sideways camera motion: flow = -f * dx / depth on static points (pinhole model)."""
    scene = build_scene(seed=2, width=64, height=32, num_frames=2)
    scene.camera.yaw[:] = 0.0
    scene.objects.velocity[:] = 0.0
    scene.camera.position[1] = scene.camera.position[0] + np.array([0.1, 0.0, 0.0])
    (f0, flow, valid), _ = list(render_sequence(scene))
    finite = np.isfinite(f0.depth)
    expected = -scene.camera.focal * 0.1 / f0.depth[finite]
    np.testing.assert_allclose(flow[0][finite], expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(flow[1][finite], 0.0, atol=1e-3)
    np.testing.assert_allclose(flow[:, ~finite], 0.0, atol=1e-3)  # sky: at infinity


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_written_sequence_layout_and_identical_bytes_per_seed(tmp_path):
    cfg = synthcity.settings(**synth_cfg())
    seq = synthcity.sequences(cfg)[1]
    assert (seq.split, seq.name) == ("val", "synth001_000000")
    dirs = synthcity.write_sequence(tmp_path / "a", seq, cfg)
    synthcity.write_sequence(tmp_path / "b", seq, cfg)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    other = synthcity.write_sequence(tmp_path / "c", seq, synthcity.settings(**synth_cfg(seed=1)))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c") and other

    frames = sorted(dirs["frames"].glob("*_leftImg8bit.png"))
    assert [p.name for p in frames[:2]] == ["synth001_000000_000000_leftImg8bit.png",
                                            "synth001_000000_000001_leftImg8bit.png"]
    assert len(frames) == 8 and read_rgb(frames[0]).shape == (64, 128, 3)
    gtfine = sorted(p.name for p in dirs["gtfine"].iterdir())
    assert gtfine == ["synth001_000000_000005_gtFine_instanceIds.png", "synth001_000000_000005_gtFine_labelIds.png"]
    truth = load_npz(dirs["truth"] / "synth001_000000_flow.npz", ("flow", "valid", "depth"))
    assert truth["flow"].shape == (7, 2, 64, 128) and truth["flow"].dtype == np.float32
    assert truth["valid"].shape == (7, 64, 128) and truth["depth"].shape == (8, 64, 128)
    labels = read_map(dirs["truth"] / "synth001_000000_000005_labelIds.png")
    instances = read_map(dirs["truth"] / "synth001_000000_000005_instanceIds.png", np.int32)
    np.testing.assert_array_equal(labels, read_map(dirs["gtfine"] / "synth001_000000_000005_gtFine_labelIds.png"))
    np.testing.assert_array_equal(semantic_from_instance_ids(instances), labels)
    # the files on disk still satisfy the warp check (PNG is lossless)
    f2, f3 = read_rgb(frames[2]), read_rgb(frames[3])
    warped = warp_next_to_current(f3, truth["flow"][2])
    assert np.abs(warped - f2).mean(-1)[truth["valid"][2].astype(bool)].mean() < 4.0


def test_backward_flow_warps_current_frame_onto_next_frame():
    scene = build_scene(seed=4, width=256, height=128, num_frames=6)
    out = list(render_sequence(scene, backward=True))
    errors = []
    for (frame, _, _, back, back_valid), (nxt, *_) in zip(out[:-1], out[1:]):
        # back maps frame t+1's pixels into frame t: sampling frame t there predicts frame t+1
        errors.append(photometric_error(nxt.rgb, frame.rgb, back, back_valid))
        assert back_valid.mean() > 0.7
    assert np.mean(errors) < 3.0, errors


@pytest.fixture(scope="module")
def even_and_varied():
    """The same street (seed 7, 12 frames at 256x128) with the even and the varied motion."""
    return {motion: list(render_sequence(build_scene(seed=7, width=256, height=128, num_frames=12, motion=motion)))
            for motion in ("even", "varied")}


def test_varied_motion_keeps_the_flow_exact(even_and_varied):
    """Stop-and-go objects and a turning camera: the flow still carries frame t+1 onto frame t."""
    rendered = even_and_varied["varied"]
    errors = [photometric_error(frame.rgb, nxt.rgb, flow, valid)
              for (frame, flow, valid), (nxt, _, _) in zip(rendered[:-1], rendered[1:])]
    assert np.mean(errors) < 3.0, errors


def test_varied_motion_is_what_constant_motion_cannot_extrapolate(even_and_varied):
    """Future prediction's data: on the same street, the flow changes from one frame to the next
    far more with the varied motion (a constant-motion guess fails), the camera's steps and heading
    change, movers stop and go, and the cars of one lane keep one profile."""
    def flow_change(rendered):
        return np.mean([np.abs(b[1] - a[1]).mean() for a, b in zip(rendered[:-2], rendered[1:-1])])

    assert flow_change(even_and_varied["varied"]) > 1.5 * flow_change(even_and_varied["even"])
    even = build_scene(seed=7, width=256, height=128, num_frames=30)
    varied = build_scene(seed=7, width=256, height=128, num_frames=30, motion="varied")
    np.testing.assert_array_equal(even.primitives.lo, varied.primitives.lo)  # the same street
    speed = np.diff(even.camera.position[:, 2])
    np.testing.assert_allclose(speed, speed[0])  # even: one speed
    steps = np.diff(varied.camera.position[:, 2])
    assert steps.max() - steps.min() > 0.3 * speed[0]
    assert steps.max() <= speed[0] + 1e-9  # never ahead of the street laid out for the even camera
    assert np.abs(varied.camera.yaw - even.camera.yaw).max() > np.deg2rad(5)
    moving = np.flatnonzero(np.abs(varied.objects.velocity).sum(1) > 0)
    factors = np.diff(varied.objects.progress[moving], axis=1)
    assert (factors.min(1) < 1e-9).any() and (factors.max(1) > 1.0).any()  # some stop, some speed up
    assert even.objects.progress is None
    lanes = {}
    for o in moving[np.isin(varied.objects.label[moving], [ID["car"], ID["truck"], ID["bus"]])]:
        x = varied.primitives.center[varied.primitives.obj == o, 0].mean()
        lanes.setdefault(round(x / 3.5 - 0.5), []).append(varied.objects.progress[o])
    assert any(len(p) > 1 for p in lanes.values())
    for profiles in lanes.values():
        np.testing.assert_allclose(profiles, np.broadcast_to(profiles[0], np.shape(profiles)))


def test_motion_setting_reaches_the_written_sequence(tmp_path):
    cfg = synthcity.settings(**synth_cfg())
    seq = synthcity.sequences(cfg)[1]
    even = synthcity.write_sequence(tmp_path / "even", seq, cfg)
    varied = synthcity.write_sequence(tmp_path / "varied", seq, synthcity.settings(**synth_cfg(motion="varied")))
    frame = "synth001_000000_000000_leftImg8bit.png"
    np.testing.assert_array_equal(read_rgb(even["frames"] / frame), read_rgb(varied["frames"] / frame))
    flows = [load_npz(d["truth"] / "synth001_000000_flow.npz", ("flow",))["flow"] for d in (even, varied)]
    assert np.abs(flows[0] - flows[1]).mean() > 0.1
    with pytest.raises(ValueError, match="motion must be one of"):
        build_scene(seed=1, width=64, height=32, num_frames=3, motion="jerky")
