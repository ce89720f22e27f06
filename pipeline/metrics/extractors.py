"""Feature extractors of the FID family, each with its weights through the registry
(pipeline/core/weights.py), and the real videos' features cached per dataset, extractor and cache.

- ``inception_fid``: TensorFlow's FID Inception-v3 (pytorch-fid's port, pool3, 2048-d) on single
  frames at 299x299: image FID.
- ``i3d_fvd``: I3D (Kinetics-400), the TorchScript detector StyleGAN-V uses for FVD, on 16-frame
  clips at 224x224 (400-d logits-layer features), every 16-frame window of each video: FVD in its
  common form; the same features over whole videos give the video FID with I3D.
- ``resnext101_kinetics``: 3D-ResNeXt-101 (Kinetics-400, Hara et al.; pipeline/metrics/resnext3d.py)
  on every 16-frame window at 112x112 (2048-d pool): the paper's second video FID.
I3D and ResNeXt-101 have no published digest: their entries are unpinned, the file must load as
the expected network (an HTML error page or another file fails there), and fid.json records the
sha256 of the file used.

An extractor only runs with its real weights (verified); offline and missing, :func:`load` raises
``WeightsError`` with the URL and the path, and fid.json records the metric as unavailable with that
reason. The real videos' per-clip features are cached under
results/<ds>/fid_stats/<extractor>-<split>-<weights sha>-<cache fingerprint>.npz.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from pipeline.core.devices import pick_device
from pipeline.core.weights import (
    DEFAULT_ENTRIES,
    WeightEntry,
    WeightsError,
    resolve,
    sha256_of,
)

CLIP_FRAMES = 16


class InceptionFID(torch.nn.Module):
    """pytorch-fid's FID Inception built from a state dict we resolved (no download inside)."""

    def __init__(self, state: dict):
        super().__init__()
        from pytorch_fid import inception as fid_inception

        original = fid_inception.load_state_dict_from_url
        fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
        try:
            self.net = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        finally:
            fid_inception.load_state_dict_from_url = original

    @torch.inference_mode()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8-range RGB -> (N, 2048)."""
        return self.net(frames.float() / 255.0)[0].flatten(1)


class I3DFeatures(torch.nn.Module):
    def __init__(self, path: Path):
        super().__init__()
        self.net = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.inference_mode()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, H, W) uint8-range RGB clips -> (N, 400) features (StyleGAN-V's FVD settings)."""
        videos = clips.float().permute(0, 2, 1, 3, 4).contiguous()  # N, 3, T, H, W in 0..255
        return self.net(videos, rescale=True, resize=True, return_features=True)


@functools.lru_cache(maxsize=4)
def load(name: str, user_path: str | None = None, entry: WeightEntry | None = None):
    """(module, sha256 of the weights file) for extractor ``name``."""
    entry = entry or DEFAULT_ENTRIES[name]
    path = resolve(entry, user_path=user_path)
    if name == "inception_fid":
        module = InceptionFID(torch.load(path, map_location="cpu", weights_only=True))
    elif name == "i3d_fvd":
        try:
            module = I3DFeatures(path)
        except RuntimeError as err:
            raise WeightsError(f"{path}: not the I3D TorchScript file ({str(err).splitlines()[0]})") from None
    elif name == "resnext101_kinetics":
        from pipeline.core.weights import load_into
        from pipeline.metrics.resnext3d import ResNeXt3D, state_dict_of_checkpoint

        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise WeightsError(f"{path}: not a PyTorch checkpoint ({str(err).splitlines()[0]})") from None
        module = ResNeXt3D()
        load_into(module, state_dict_of_checkpoint(checkpoint), path)
    else:
        raise KeyError(name)
    return module.eval(), sha256_of(path)


def frame_features(model, videos: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """Inception features of every frame of ``videos`` (each (T, H, W, 3) uint8)."""
    device = pick_device()
    model = model.to(device)
    frames = np.concatenate(videos)
    out = []
    for start in range(0, len(frames), batch):
        chunk = torch.from_numpy(frames[start:start + batch]).to(device).permute(0, 3, 1, 2)
        out.append(model(chunk).float().cpu().numpy())
    return np.concatenate(out)


def clip_windows(video: np.ndarray, clip: int = CLIP_FRAMES, stride: int = 1) -> list[np.ndarray]:
    """Every ``clip``-frame window of a (T, H, W, 3) video starting each ``stride`` frames, the last
    one ending at the last frame (a shorter video: its frames repeated to ``clip``)."""
    if len(video) < clip:
        video = np.concatenate([video] * (clip // len(video) + 1))[:clip]
    starts = list(range(0, len(video) - clip + 1, stride))
    if starts[-1] != len(video) - clip:
        starts.append(len(video) - clip)
    return [video[s:s + clip] for s in starts]


def clip_features(model, videos: list[np.ndarray], clip: int = CLIP_FRAMES, stride: int = 1, batch: int = 8) -> np.ndarray:
    """Features of every ``clip``-frame window of ``videos`` (clip_windows), one row per window."""
    device = pick_device()
    model = model.to(device)
    clips = [window for video in videos for window in clip_windows(video, clip, stride)]
    out = []
    for start in range(0, len(clips), batch):
        chunk = torch.from_numpy(np.stack(clips[start:start + batch])).to(device).permute(0, 1, 4, 2, 3)
        out.append(model(chunk).float().cpu().numpy())
    return np.concatenate(out)


def cached_real_features(cache_dir: Path, name: str, split: str, sha: str, fingerprint: str,
                         compute) -> list[np.ndarray]:
    """Per-clip features of the real videos from results/<ds>/fid_stats/, computed by ``compute()``
    (a list, one array per clip) the first time. The file is keyed by the extractor's weights and
    by the fingerprint of the cache's evaluated sequences, so a rebuilt cache gets new ones."""
    path = cache_dir / f"{name}-{split}-{sha[:12]}-{fingerprint[:12]}.npz"
    if path.is_file():
        with np.load(path) as data:
            return [data[f"clip{i}"] for i in range(len(data.files))]
    parts = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"clip{i}": part for i, part in enumerate(parts)})
    tmp.rename(path)
    return parts
