"""Feature extractors of the FID family, each with its weights through the registry
(model/weights.py), and the real-video statistics cached per dataset and extractor.

- ``inception_fid``: TensorFlow's FID Inception-v3 (pytorch-fid's port, pool3, 2048-d) on single
  frames at 299x299: image FID.
- ``i3d_fvd``: I3D (Kinetics-400), the TorchScript detector StyleGAN-V uses for FVD, on 16-frame
  clips at 224x224 (400-d logits-layer features): FVD in its common form; the same features over
  the paper's clips give the video FID with I3D.
- ``resnext101_kinetics``: 3D-ResNeXt-101 (Kinetics-400, Hara et al.; pipeline/metrics/resnext3d.py)
  on 16-frame clips at 112x112 (2048-d pool): the paper's second video FID.
I3D and ResNeXt-101 have no published digest: their entries are unpinned, the file must load as
the expected network (an HTML error page or another file fails there), and fid.json records the
sha256 of the file used.

An extractor only runs with its real weights (verified); offline and missing, :func:`load` raises
``WeightsError`` with the URL and the path, and fid.json records the metric as unavailable with that
reason. Real statistics are cached under results/<ds>/fid_stats/<extractor>-<split>-<sha>.npz.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from model.weights import DEFAULT_ENTRIES, WeightEntry, WeightsError, resolve, sha256_of
from pipeline.metrics.frechet import GaussianStats, statistics

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
        from model.weights import load_into
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


def device_of() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def frame_features(model, videos: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """Inception features of every frame of ``videos`` (each (T, H, W, 3) uint8)."""
    device = device_of()
    model = model.to(device)
    frames = np.concatenate(videos)
    out = []
    for start in range(0, len(frames), batch):
        chunk = torch.from_numpy(frames[start:start + batch]).to(device).permute(0, 3, 1, 2)
        out.append(model(chunk).float().cpu().numpy())
    return np.concatenate(out)


def clip_features(model, videos: list[np.ndarray], clip: int = CLIP_FRAMES, batch: int = 8) -> np.ndarray:
    """I3D features of every non-overlapping ``clip``-frame clip of ``videos`` (shorter videos:
    their frames repeated to ``clip``)."""
    device = device_of()
    model = model.to(device)
    clips = []
    for video in videos:
        if len(video) < clip:
            video = np.concatenate([video] * (clip // len(video) + 1))[:clip]
        clips += [video[s:s + clip] for s in range(0, len(video) - clip + 1, clip)]
    out = []
    for start in range(0, len(clips), batch):
        chunk = torch.from_numpy(np.stack(clips[start:start + batch])).to(device).permute(0, 1, 4, 2, 3)
        out.append(model(chunk).float().cpu().numpy())
    return np.concatenate(out)


def cached_real_stats(cache_dir: Path, name: str, split: str, sha: str, compute) -> GaussianStats:
    """Real statistics from results/<ds>/fid_stats/, computed by ``compute()`` the first time."""
    path = cache_dir / f"{name}-{split}-{sha[:12]}.npz"
    if path.is_file():
        return GaussianStats.load(path)
    stats = statistics(compute())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    stats.save(tmp)
    tmp.rename(path)
    return stats
