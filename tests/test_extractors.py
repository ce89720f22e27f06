"""The FID-family extractors load only through the registry (weights verified), produce features
of the right size, and the real statistics are cached per dataset and extractor. The checkpoints
here are made by the tests (random weights: the plumbing, never a reported number)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.weights import WeightEntry, WeightsError, sha256_of
from pipeline.metrics import extractors


def _random_fid_inception_state() -> dict:
    from pytorch_fid import inception as fid_inception

    original_loader, original_load = fid_inception.load_state_dict_from_url, torch.nn.Module.load_state_dict
    fid_inception.load_state_dict_from_url = lambda *a, **k: None
    torch.nn.Module.load_state_dict = lambda self, *a, **k: None  # keep the random initialisation
    try:
        return fid_inception.fid_inception_v3().state_dict()
    finally:
        fid_inception.load_state_dict_from_url, torch.nn.Module.load_state_dict = original_loader, original_load


def test_inception_extractor_loads_through_the_registry_and_gives_pool3_features(tmp_path):
    path = tmp_path / "pt_inception-test.pth"
    torch.save(_random_fid_inception_state(), path)
    entry = WeightEntry("inception_fid", "https://example.invalid/x.pth", path.name, sha256_of(path), "test")
    model, sha = extractors.load("inception_fid", str(path), entry)
    assert sha == sha256_of(path)
    videos = [np.random.default_rng(i).integers(0, 255, (3, 64, 96, 3), dtype=np.uint8) for i in range(2)]
    features = extractors.frame_features(model, videos, batch=4)
    assert features.shape == (6, 2048) and np.isfinite(features).all()
    wrong = WeightEntry("inception_fid", "https://example.invalid/x.pth", path.name, "0" * 64, "test")
    with pytest.raises(WeightsError, match="does not match"):
        extractors.load("inception_fid", str(path), wrong)


class _TinyI3D(torch.nn.Module):
    """Stands in for the TorchScript I3D: the same call signature, features from pooled pixels."""

    def forward(self, videos: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = True) -> torch.Tensor:
        x = videos / 127.5 - 1 if rescale else videos
        return x.mean(dim=(3, 4)).flatten(1)


def test_i3d_extractor_is_torchscript_with_an_unpinned_digest_recorded(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_TinyI3D()).save(str(path))
    entry = WeightEntry("i3d_fvd", "https://example.invalid/i3d.pt", path.name, None, "test")
    model, sha = extractors.load("i3d_fvd", str(path), entry)
    assert sha == sha256_of(path)  # no published digest: the file's own is recorded
    videos = [np.full((20, 32, 32, 3), 10 * i, np.uint8) for i in range(3)]
    features = extractors.clip_features(model, videos, clip=8)
    assert features.shape == (3 * 13, 3 * 8)  # every 8-frame window: 13 per 20-frame video


def test_missing_extractor_weights_name_the_file_and_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("VID2VID_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    extractors.load.cache_clear()
    with pytest.raises(WeightsError, match=r"pt_inception-2015-12-05-6726825d.pth"):
        extractors.load("inception_fid")


def test_real_features_are_computed_once_per_extractor_split_and_cache(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return [np.random.default_rng(i).normal(size=(20, 4)) for i in range(3)]  # one array per clip

    first = extractors.cached_real_features(tmp_path, "inception_fid-frames", "val", "ab" * 32, "f0" * 32, compute)
    again = extractors.cached_real_features(tmp_path, "inception_fid-frames", "val", "ab" * 32, "f0" * 32, compute)
    assert len(calls) == 1 and len(again) == 3
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    extractors.cached_real_features(tmp_path, "inception_fid-frames", "val", "cd" * 32, "f0" * 32, compute)  # weights
    extractors.cached_real_features(tmp_path, "inception_fid-frames", "val", "ab" * 32, "f1" * 32, compute)  # cache
    assert len(calls) == 3


def test_every_16_frame_window_is_scored():
    video = np.arange(30)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    windows = extractors.clip_windows(video)
    assert len(windows) == 15 and windows[-1][-1, 0, 0, 0] == 29  # frames 16-29 too
    assert [w[0, 0, 0, 0] for w in extractors.clip_windows(video, stride=8)] == [0, 8, 14]
    short = extractors.clip_windows(video[:5])
    assert len(short) == 1 and len(short[0]) == 16


def test_resnext101_loads_the_authors_dataparallel_checkpoint_and_gives_2048_features(tmp_path):
    from pipeline.metrics.resnext3d import ResNeXt3D

    path = tmp_path / "resnext-101-kinetics.pth"
    torch.save({"arch": "resnext-101", "state_dict": {f"module.{k}": v for k, v in ResNeXt3D().state_dict().items()}},
               path)
    entry = WeightEntry("resnext101_kinetics", "https://example.invalid/r.pth", path.name, None, "test")
    model, sha = extractors.load("resnext101_kinetics", str(path), entry)
    video = np.random.default_rng(0).integers(0, 255, (16, 120, 160, 3), dtype=np.uint8)
    assert extractors.clip_features(model, [video]).shape == (1, 2048)
    html = tmp_path / "page.html"  # what a failed Google Drive download leaves
    html.write_text("<html>quota exceeded</html>")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        extractors.load("resnext101_kinetics", str(html), entry)
