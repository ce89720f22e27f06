"""Evaluation metrics and the evaluate stage on the small cache: temporal consistency separates a
flickering video from a consistent one, fid.json records what it cannot compute."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.core.images import write_rgb
from pipeline.metrics import FEATURE_METRICS, scoring
from pipeline.metrics.image import psnr, ssim
from pipeline.metrics.temporal import warping_error
from pipeline.stages import evaluate


def test_warping_error_is_low_for_the_real_video_and_high_for_flicker(small_cache):
    from safetensors.numpy import load_file

    _, shard = small_cache
    tensors = load_file(str(shard))
    frames = list(tensors["synth000_000000/frames"])
    back = tensors["synth000_000000/flow_backward"].astype(np.float32)
    conf = tensors["synth000_000000/confidence_backward"].astype(np.float32) / 255
    real = warping_error(frames, back, conf)
    rng = np.random.default_rng(0)
    flicker = [np.clip(f.astype(int) + rng.integers(-40, 40, size=(1, 1, 3)), 0, 255).astype(np.uint8) for f in frames]
    assert real < 4.0 and warping_error(flicker, back, conf) > real + 10


def test_psnr_and_ssim():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    noisy = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    assert psnr(noisy, image) < 40 and psnr(image, image) == float("inf")
    assert ssim(image, image) == pytest.approx(1.0) and ssim(noisy, image) < 0.99


def _evaluator_checkpoint(path, frames: np.ndarray):
    """A DeepLabV3 checkpoint in the trained segmenter's format: random weights, its batch-norm
    statistics gathered on ``frames`` (else its pooled features are about 1e-9 everywhere)."""
    import torch

    from pipeline.segmentation import trainable

    torch.manual_seed(0)
    model = trainable.TorchvisionDeepLabV3("mobilenet_v3_large", decoder=True, aspp_channels=32, decoder_channels=16)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the passes
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy(frames).permute(0, 3, 1, 2).float())
    trainable.save(path, model.eval(), {"steps": 0})
    return path


def test_evaluate_stage_writes_fid_json_metrics_csv_and_plot(small_cache, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    ds, shard = small_cache
    real = load_file(str(shard))["synth001_000000/frames"]  # the val sequence
    rng = np.random.default_rng(2)
    for method, frames in (("copy", real), ("noise", rng.integers(0, 255, real.shape, dtype=np.uint8))):
        folder = ds.results / "synth" / method / "synth001_000000"
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            write_rgb(folder / f"{i:06d}.png", frame)
    output = tmp_path / "fid.json"
    monkeypatch.setenv("VID2VID_WEIGHTS", str(tmp_path / "weights"))  # offline: no extractor weights
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    evaluator = _evaluator_checkpoint(tmp_path / "evaluator.pt", real)
    results = evaluate.evaluate(ds, ["copy", "noise"], skip_first=2, evaluator=evaluator)
    evaluate.write_outputs(results, {"dataset": "demo"}, output)
    saved = json.loads(output.read_text())
    copy, noise = saved["methods"]["copy"], saved["methods"]["noise"]
    assert copy["temporal_warping_error"]["value"] < noise["temporal_warping_error"]["value"]
    assert copy["ssim"]["value"] == pytest.approx(1.0) and copy["psnr"]["value"] > noise["psnr"]["value"]
    assert copy["psnr"]["clips"] == 1 and copy["psnr"]["frames"] == 6 and copy["psnr"]["resolution"] == [256, 128]
    assert copy["psnr"]["first_frame_scored"] == 2  # frames 2..7: the first two are the single-image generator's
    for metric, file in (("image_fid_inception", "pt_inception-2015-12-05-6726825d.pth"), ("fvd_i3d", "i3d_torchscript.pt"),
                         ("video_fid_i3d", "i3d_torchscript.pt"), ("video_fid_resnext101", "resnext-101-kinetics.pth"),
                         ("image_kid_inception", "pt_inception-2015-12-05-6726825d.pth"), ("kvd_i3d", "i3d_torchscript.pt")):
        assert copy[metric]["value"] is None and copy[metric]["available"] is False  # never from random weights
        assert file in copy[metric]["reason"] and str(tmp_path / "weights") in copy[metric]["reason"]
    assert copy["segmentation_miou"]["available"] is False  # labels mode 'given': no segmenter
    # realism: the evaluator's features (FD, KID) and the network-free statistics, the copy at the floor
    for name in ("colour_distance_lab", "spectrum_distance"):
        assert copy[name]["value"] == pytest.approx(0.0, abs=1e-6) and noise[name]["value"] > 1.0, name
    assert copy["image_kid_segmenter_standin"]["value"] < noise["image_kid_segmenter_standin"]["value"]
    assert copy["image_fid_segmenter_standin"]["value"] < noise["image_fid_segmenter_standin"]["value"]
    assert str(evaluator) in copy["image_fid_segmenter_standin"]["extractor"]
    # the comparison with the baseline (copy, the first method), clip by clip: one clip gives no interval
    paired = noise["psnr"]["vs_baseline"]
    assert paired["baseline"] == "copy" and paired["difference"] == pytest.approx(
        noise["psnr"]["value"] - copy["psnr"]["value"]) and paired["low"] is None
    assert paired["verdict"] == "no significant difference" and "vs_baseline" not in copy["psnr"]
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert {"difference", "difference_low", "difference_high", "verdict", "direction"} <= set(table.columns)
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    spread = noise["psnr"]["spread"]
    assert spread["method"] == "bootstrap over clips: needs 2 or more, got 1" and spread["std"] is None


def test_the_paired_comparison_marks_significant_differences_in_the_metrics_direction():
    rng = np.random.default_rng(3)
    difficulty = [rng.normal(0, 5, 10) for _ in range(6)]  # per clip, shared by both methods
    baseline = {"psnr": scoring.mean_scored([d + 20 for d in difficulty], {}),
                "temporal_warping_error": scoring.mean_scored([d + 20 for d in difficulty], {})}
    better = {"psnr": scoring.mean_scored([d + 21 for d in difficulty], {}),  # +1 dB on every clip
              "temporal_warping_error": scoring.mean_scored([d + 21 for d in difficulty], {})}  # +1: worse
    compared = evaluate.compare_with_baseline({"base": baseline, "ours": better}, "base")["ours"]
    assert compared["psnr"]["vs_baseline"]["verdict"] == "better"
    assert compared["temporal_warping_error"]["vs_baseline"]["verdict"] == "worse"
    assert compared["psnr"]["vs_baseline"]["low"] > 0.5


def test_every_metric_has_a_direction_and_a_spread(tmp_path):
    from pipeline.metrics.spread import bootstrap

    assert set(FEATURE_METRICS) <= set(evaluate.METRICS)  # the video FIDs are plotted too
    assert {m.direction for m in evaluate.METRICS.values()} == {"lower", "higher"}
    with pytest.raises(ValueError, match=r"\['sharpness'\] are not in pipeline.metrics.METRICS"):
        evaluate.write_outputs({"vid2vid": {"psnr": {"value": 1.0}, "sharpness": {"value": 2.0}}}, {},
                               tmp_path / "fid.json")
    assert not (tmp_path / "fid.json").exists()  # refused before anything is written
    rng = np.random.default_rng(0)
    clips = [rng.normal(loc, 1.0, size=(30, 4)) for loc in (0.0, 0.0, 0.1, 0.2)]
    entry = scoring.distance_scores(clips, [c + 1.0 for c in clips], "image_fid_inception", "image_kid_inception",
                                    {})["image_fid_inception"].entry
    assert entry["value"] == pytest.approx(4.0, abs=0.5) and entry["features"] == 120
    assert entry["spread"]["std"] > 0 and entry["spread"]["ci95"][0] <= entry["value"] <= entry["spread"]["ci95"][1] + 1
    means = bootstrap([np.array([v]) for v in (1.0, 2.0, 3.0, 4.0)], lambda p: float(np.mean(np.concatenate(p))))
    assert 1.0 <= means["ci95"][0] < 2.5 < means["ci95"][1] <= 4.0 and means["resamples"] == 1000
