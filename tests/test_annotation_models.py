"""The annotation networks: the mmseg-compatible DeepLabV3 against a fixture recorded from the real
mmsegmentation, checkpoint loading errors, the COCO -> Cityscapes instance composition, the
trained segmenter and Mask R-CNN paths, and the learned flow modes (untrained weights: shapes and
plumbing only)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.cityscapes_labels import ID
from pipeline.core.weights import WeightEntry, WeightsError, load_into, sha256_of
from pipeline.segmentation import maskrcnn, predict
from pipeline.segmentation.mmseg_deeplabv3 import DeepLabV3, state_dict_of_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"


def _recorder():
    spec = importlib.util.spec_from_file_location("record", FIXTURES / "record_mmseg_deeplabv3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("depth", [50, 101])
def test_mmseg_deeplabv3_keys_and_shapes_match_the_recorded_mmsegmentation_model(depth):
    recorded = json.loads((FIXTURES / "mmseg_deeplabv3_keys.json").read_text())["keys"][f"r{depth}"]
    ours = {k: list(v.shape) for k, v in DeepLabV3(depth).state_dict().items()}
    assert sorted(ours) == sorted(recorded)
    assert ours == recorded


def test_mmseg_deeplabv3_output_matches_mmsegmentation_on_the_same_weights():
    record = _recorder()
    model = DeepLabV3(50).eval()
    model.load_state_dict(record.deterministic_fill(model.state_dict()))
    expected = np.load(FIXTURES / "mmseg_deeplabv3_r50_logits.npz")
    with torch.no_grad():
        logits = model(record.fixed_input())
    np.testing.assert_allclose(logits[:, :, ::4, ::4].numpy(), expected["logits"], rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1).numpy() == expected["argmax"]).mean() > 0.999


def test_pretrained_segmenter_loads_a_checkpoint_through_the_registry_and_names_wrong_keys(tmp_path):
    from pipeline.segmentation import loaders

    model = DeepLabV3(50)
    path = tmp_path / "deeplab.pth"
    torch.save({"meta": {"CLASSES": ["road"]}, "state_dict": model.state_dict()}, path)
    entry = WeightEntry("test", "https://example.invalid/deeplab.pth", path.name, sha256_of(path), "test")
    state = state_dict_of_checkpoint(torch.load(path, weights_only=True))
    load_into(DeepLabV3(50), state, path)  # the right file loads
    broken = dict(state)
    broken.pop("decode_head.conv_seg.weight")
    broken["decode_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"missing keys.*conv_seg.weight.*unexpected keys.*extra.weight"):
        load_into(DeepLabV3(50), broken, path)
    loaders.load_pretrained.cache_clear()
    with pytest.raises(WeightsError, match="sha256"):  # the registry's R50 hash is not this file's
        loaders.load_pretrained("deeplabv3_r50_cityscapes", str(path))
    assert entry.sha256 == sha256_of(path)


def test_missing_pretrained_weights_say_which_file_to_put_where(tmp_path, monkeypatch):
    from pipeline.segmentation import loaders

    monkeypatch.setenv("VID2VID_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    loaders.load_pretrained.cache_clear()
    with pytest.raises(WeightsError) as err:
        loaders.load_pretrained("deeplabv3_r101_cityscapes", None)
    message = str(err.value)
    assert "deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth" in message
    assert str(tmp_path / "cache") in message and "offline" in message


def test_train_ids_map_back_to_label_ids_and_miou_counts_present_classes():
    assert predict.TRAIN_TO_LABEL[0] == ID["road"] and predict.TRAIN_TO_LABEL[13] == ID["car"]
    truth = np.array([[0, 0, 13, 255]])
    pred = np.array([[0, 13, 13, 0]])
    matrix = predict.confusion(pred, truth)
    assert matrix.sum() == 3  # the ignored pixel does not count
    assert predict.mean_iou(matrix) == pytest.approx((0.5 + 0.5) / 2)
    from pipeline.stages.train_segmenter import mistaken_for

    assert mistaken_for(matrix) == {"road": ["car", 0.5]}  # car's one pixel is right: not listed


def test_segmenter_with_the_stride4_decoder_stride2_stage_and_a_narrow_head_trains_saves_and_loads(tmp_path):
    from pipeline.datasets import synthcity
    from pipeline.segmentation import trainable
    from pipeline.stages import frames, train_segmenter
    from tests.conftest import make_dataset, synth_cfg

    synth = synth_cfg(annotate_every=3)
    ds = make_dataset(tmp_path, "seg", adapter="cityscapes", generate={"synthcity": synth}, frames={"size": [128, 64]},
                      labels={"mode": "train", "scales": [1.0, 1.5], "flip": True,
                              "train": {"steps": 3, "batch": 2, "decoder": True, "aspp_channels": 48,
                                        "decoder_channels": 32, "fine_channels": 8, "warmup_steps": 2}})
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    metrics = train_segmenter.train(ds, tmp_path / "seg.pt", "cpu")
    train_segmenter.train(ds, tmp_path / "again.pt", "cpu")  # its sha256 names the labels made with it
    assert (tmp_path / "seg.pt").read_bytes() == (tmp_path / "again.pt").read_bytes()  # no wall time inside
    assert metrics["steps"] == 3 and metrics["held_out"]["frames"] >= 1 and 0 <= metrics["held_out"]["miou"] <= 1
    # held-out mIoU as the labels stage will infer (two scales, mirrored), the network alone beside it
    assert metrics["held_out"]["inference"] == {"scales": [1.0, 1.5], "flip": True}
    assert 0 <= metrics["held_out"]["single_scale"]["miou"] <= 1
    model = trainable.load(tmp_path / "seg.pt")
    assert model.decoder is not None and "low" in model.net.backbone.return_layers.values()
    assert model.net.classifier[0].project[0].out_channels == 48  # the ASPP's width came back from the checkpoint
    assert model.decoder.refine[0].out_channels == 32
    assert model.decoder.fine.refine[3].out_channels == 8 and "stride_2" in model.net.backbone.return_layers.values()
    rgb = torch.rand(1, 3, 64, 128) * 255
    assert model(rgb).shape == (1, 19, 64, 128)
    # a checkpoint from before the stride-2 stage (no fine_channels) loads as it was trained
    old = trainable.TorchvisionDeepLabV3("mobilenet_v3_large", decoder=True, aspp_channels=48, decoder_channels=32)
    torch.save({"arch": "torchvision_deeplabv3", "backbone": "mobilenet_v3_large", "num_classes": 19,
                "input_scale": 1.0, "decoder": True, "aspp_channels": 48, "decoder_channels": 32,
                "state_dict": old.state_dict()},
               tmp_path / "old.pt")
    old_loaded = trainable.load(tmp_path / "old.pt")
    assert old_loaded.decoder.fine is None and old_loaded(rgb).shape == (1, 19, 64, 128)
    resnet = trainable.TorchvisionDeepLabV3("resnet50", decoder=True, aspp_channels=16, decoder_channels=16,
                                            fine_channels=8).eval()
    assert resnet(rgb[..., :64]).shape == (1, 19, 64, 64)
    plain = trainable.TorchvisionDeepLabV3("mobilenet_v3_large", aspp_channels=48)
    with pytest.raises(WeightsError, match="decoder"):  # a decoder checkpoint does not load into plain DeepLabV3
        load_into(plain, model.state_dict(), tmp_path / "seg.pt")
    wide = trainable.TorchvisionDeepLabV3("mobilenet_v3_large", decoder=True, fine_channels=8)  # a 256-wide head
    assert set(wide.state_dict()) == set(model.state_dict())  # same keys: the width is in the shapes only
    with pytest.raises(WeightsError, match="shape"):
        load_into(wide, model.state_dict(), tmp_path / "seg.pt")


def test_multiscale_flip_inference_averages_passes_and_is_mirror_symmetric():
    class StridedConv(torch.nn.Module):  # a stride-2 layer, as in the real networks: not mirror-symmetric
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 19, 5, stride=2, padding=2)

        def forward(self, rgb):
            return torch.nn.functional.interpolate(self.conv(rgb / 255), size=rgb.shape[2:], mode="bilinear")

    torch.manual_seed(0)
    model = StridedConv().eval()
    frames = [np.random.default_rng(i).integers(0, 256, (32, 64, 3), dtype=np.uint8) for i in range(2)]
    cpu = torch.device("cpu")
    plain = predict.predict_train_ids(model, frames, cpu)
    with torch.no_grad(), predict.autocast(predict.resolve_precision("auto", cpu), cpu):  # bf16 where native
        assert (plain == model(predict.to_batch(frames, cpu)).float().argmax(1).numpy()).all()
    both = predict.predict_train_ids(model, frames, cpu, scales=(1.0, 1.5), flip=True)
    assert both.shape == plain.shape and (both != plain).any()  # the extra passes change decisions
    mirror_frames = [f[:, ::-1].copy() for f in frames]
    mirrored = predict.predict_train_ids(model, mirror_frames, cpu, scales=(1.0, 1.5), flip=True)
    # the network alone is not mirror-symmetric (stride-2 sampling); the flip-averaged result is
    assert (both == mirrored[:, :, ::-1]).mean() > 0.999
    plain_mirrored = predict.predict_train_ids(model, mirror_frames, cpu)
    assert (plain == plain_mirrored[:, :, ::-1]).mean() < 0.999


def test_trained_mask_rcnn_has_stride8_levels_trains_saves_and_loads_at_its_training_size(tmp_path):
    from torchvision.ops.misc import FrozenBatchNorm2d

    from pipeline.datasets import synthcity
    from pipeline.segmentation import maskrcnn
    from pipeline.stages import frames, train_instances
    from tests.conftest import make_dataset, synth_cfg

    synth = synth_cfg(annotate_every=3)
    ds = make_dataset(tmp_path, "inst", adapter="cityscapes", generate={"synthcity": synth}, frames={"size": [128, 64]},
                      instances={"mode": "train", "train": {"steps": 2, "batch": 2}})
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    metrics = train_instances.train(ds, tmp_path / "inst.pt", "cpu")
    train_instances.train(ds, tmp_path / "again.pt", "cpu")
    assert (tmp_path / "inst.pt").read_bytes() == (tmp_path / "again.pt").read_bytes()  # no wall time inside
    held = metrics["held_out"]
    assert metrics["steps"] == 2 and held["true_instances"] >= held["true_large_instances"] >= 0
    assert 0 <= held["recall@0.5 (>= 100 px)"] <= 1
    model = maskrcnn.load(tmp_path / "inst.pt")
    assert model.transform.min_size == (64,)  # runs at the size it was trained at, not the builder's default
    with torch.no_grad():
        levels = model.backbone(torch.rand(1, 3, 64, 128))
    assert [tuple(v.shape[-2:]) for v in levels.values()] == [(8, 16), (4, 8), (2, 4), (1, 2)]  # strides 8..64
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())  # trained from scratch: real BN
    legacy = maskrcnn.build(fpn_stages=maskrcnn.LEGACY_FPN_STAGES)  # checkpoints from before: stride-32 levels
    with pytest.raises(WeightsError, match="missing|unexpected"):
        load_into(legacy, model.state_dict(), tmp_path / "inst.pt")
    torch.save({"arch": "maskrcnn", "backbone": "mobilenet_v3_large", "state_dict": legacy.state_dict()}, tmp_path / "old.pt")
    assert maskrcnn.load(tmp_path / "old.pt").backbone.body.return_layers == {"13": "0", "16": "1"}  # still loads
    maskrcnn.save(tmp_path / "resaved.pt", maskrcnn.load(tmp_path / "old.pt"), "mobilenet_v3_large", {})
    assert maskrcnn.load(tmp_path / "resaved.pt").fpn_stages == maskrcnn.LEGACY_FPN_STAGES  # saved as what it is


def test_compose_instance_map_cuts_masks_by_labels_and_orders_by_score():
    labels = np.full((20, 20), ID["road"], np.uint8)
    labels[2:10, 2:10] = ID["car"]
    labels[12:18, 12:18] = ID["person"]
    car = np.zeros((20, 20), bool)
    car[0:12, 0:12] = True  # spills over the road: cut by the labels
    person = np.zeros((20, 20), bool)
    person[12:18, 12:18] = True
    out, count = maskrcnn.compose_instance_map(labels, [("car", 0.9, car), ("person", 0.8, person),
                                                        ("car", 0.7, car)])  # a duplicate: nothing left
    assert count == 2
    assert (out[2:10, 2:10] == ID["car"] * 1000).all()
    assert (out[12:18, 12:18] == ID["person"] * 1000).all()
    assert (out[0, :] == ID["road"]).all()


def test_coco_detections_map_to_cityscapes_with_riders():
    masks = torch.zeros((3, 1, 10, 10))
    output = {"labels": torch.tensor([1, 2, 3]), "scores": torch.tensor([0.9, 0.9, 0.2]),
              "boxes": torch.tensor([[2.0, 0, 6, 8], [1, 4, 7, 10], [0, 0, 10, 10]]), "masks": masks}
    found = maskrcnn.coco_detections_to_cityscapes(output, 0.5)
    assert [name for name, _, _ in found] == ["rider", "bicycle"]  # the car is below the threshold


def test_instance_targets_and_matching_round_trip():
    truth = np.full((16, 16), ID["road"], np.uint16)
    truth[2:8, 2:8] = ID["car"] * 1000
    truth[9:14, 9:14] = ID["car"] * 1000 + 1
    targets = maskrcnn.targets_from_instance_map(truth)
    assert targets["labels"].tolist() == [3, 3] and targets["boxes"][0].tolist() == [2, 2, 8, 8]
    found = maskrcnn.match_instances(truth, truth)
    assert found["tp"] == 2 and found["ious"] == [1.0, 1.0]
    pred = truth.copy()
    pred[9:14, 9:14] = ID["road"]  # the 25-pixel car missed: recall over instances of >= 30 pixels is whole
    found = maskrcnn.match_instances(pred, truth, large=30)
    assert (found["tp"], found["true"], found["tp_large"], found["true_large"]) == (1, 2, 1, 1)


@pytest.mark.parametrize("mode", ["raft_small", "ptlflow:raft"])
def test_learned_flow_modes_run_batched_with_untrained_weights(mode):
    if mode.startswith("ptlflow") and importlib.util.find_spec("ptlflow") is None:
        pytest.skip("ptlflow not installed (pip install -e '.[flow]')")
    from pipeline.flow import models as flow_models

    frames = [np.random.default_rng(i).integers(0, 255, (128, 160, 3), dtype=np.uint8) for i in range(4)]
    forward, confidence, backward, back_confidence = flow_models.estimate(
        flow_models.load(mode, "random"), frames, torch.device("cpu"), batch=2)
    assert forward.shape == backward.shape == (3, 2, 128, 160)
    assert confidence.shape == (3, 1, 128, 160) and set(np.unique(confidence)) <= {0.0, 1.0}
    assert np.isfinite(forward).all()


def test_torch_consistency_agrees_with_the_dis_check():
    from pipeline.flow import dis as flow_dis
    from pipeline.flow import models as flow_models

    rng = np.random.default_rng(0)
    forward = rng.normal(0, 2, (24, 32, 2)).astype(np.float32)
    backward = -forward + rng.normal(0, 0.3, (24, 32, 2)).astype(np.float32)
    expected = flow_dis.consistency(forward, backward)
    ours = flow_models.consistency(torch.from_numpy(forward).permute(2, 0, 1)[None],
                                   torch.from_numpy(backward).permute(2, 0, 1)[None])[0, 0].numpy()
    assert (ours == expected).mean() > 0.97  # bilinear border handling differs at a few pixels


def test_learned_flow_that_goes_non_finite_stops_naming_the_sequence(tmp_path, monkeypatch, capsys):
    from pipeline.datasets import synthcity
    from pipeline.flow import models as flow_models
    from pipeline.stages import flow, frames
    from tests.conftest import make_dataset, synth_cfg

    class NaNFlow(torch.nn.Module):
        def forward(self, first, second):
            return torch.full((first.shape[0], 2, *first.shape[2:]), float("nan"))

    ds = make_dataset(tmp_path, "demo", adapter="cityscapes", generate={"synthcity": synth_cfg(train=1, val=0)},
                      frames={"size": [128, 64]}, flow={"mode": "raft_small", "device": "cpu"})
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    monkeypatch.setattr(flow_models, "load", lambda mode, weights: NaNFlow())
    with pytest.raises(SystemExit) as exit_info:
        flow.main(["--dataset", "demo", "--dataset-json", json.dumps(ds.cfg), "--results", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    assert "frames/synth000_000000: raft_small produced non-finite forward flow" in capsys.readouterr().err
    assert not (ds.results / "flow" / "synth000_000000").exists()  # nothing partial left


def test_a_missing_trained_annotator_says_which_stage_and_target_make_it(tmp_path):
    from pipeline.core.errors import InputError
    from pipeline.segmentation import loaders
    from pipeline.stages import instances

    with pytest.raises(InputError, match=r"no trained segmenter: run `python -m pipeline.stages.train_segmenter` "
                                         r"\(labels mode 'train'\) or `snakemake <results>/<ds>/segmenter/model.pt`"):
        loaders.load_trained(tmp_path / "segmenter" / "model.pt")
    with pytest.raises(InputError, match=r"no trained Mask R-CNN: run `python -m pipeline.stages.train_instances` "
                                         r"\(instances mode 'train'\) .*<ds>/instance_model/model.pt"):
        instances.load_trained(tmp_path / "instance_model" / "model.pt")


@pytest.mark.parametrize("loader", ["pipeline.segmentation.trainable", "pipeline.segmentation.maskrcnn"])
def test_a_truncated_annotator_checkpoint_says_the_command_that_makes_it(tmp_path, loader):
    import importlib

    from pipeline.core.errors import InputError

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, path)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match=rf"model.pt: is truncated or corrupt .*`snakemake --cores 2 --force {path}`"):
        importlib.import_module(loader).load(path)
