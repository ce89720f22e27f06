"""Training clips from the cached tensors (DESIGN.md, cache; paper section 4, training details).

:class:`ClipDataset` samples, for each sequence, a clip of ``n_frames`` frames with a random
temporal stride of up to ``max_t_step`` (the official recipe's ``max_t_step``), then applies one
random scale, crop and horizontal flip to every channel of the clip alike: frames (bilinear),
label and instance maps (nearest), flow (bilinear, vectors scaled with the image, x negated by a
flip) and flow confidence. For a stride s > 1 the cached one-frame flows are composed,
f(t->t+s)(p) = f(t->t+1)(p) + f(t+1->t+s)(p + f(t->t+1)(p)), confidences multiplied along the chain.

Randomness comes from (seed, epoch, index) alone, so a clip does not depend on the DataLoader
worker that makes it; shards are opened lazily in each worker process. This module reads only the
cache files (no pipeline code): their header is checked against what the trainer expects.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CACHE_FORMAT = "vid2vid-cache"
KEYS = ("frames", "labels", "instances", "flow", "confidence")


class CacheError(Exception):
    """A cache shard is unreadable or does not match the configuration."""


def read_header(path: str | Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CacheError(f"{path}: cache shard does not exist (run the cache stage first)")
    try:
        with safe_open(str(path), framework="numpy") as shard:
            metadata = shard.metadata() or {}
            names = set(shard.keys())
    except Exception as err:  # safetensors signals corrupt files with several error types
        raise CacheError(f"{path}: corrupt or truncated cache shard ({err})") from None
    if "vid2vid" not in metadata:
        raise CacheError(f"{path}: not a vid2vid cache shard (no header)")
    header = json.loads(metadata["vid2vid"])
    if header.get("format") != CACHE_FORMAT:
        raise CacheError(f"{path}: header format {header.get('format')!r}, expected {CACHE_FORMAT!r}")
    for seq in header["sequences"]:
        missing = [k for k in KEYS if f"{seq['name']}/{k}" not in names]
        if missing:
            raise CacheError(f"{path}: sequence {seq['name']} lacks tensors {missing}")
    return header


@dataclass(frozen=True)
class Expectation:
    """What the trainer's config requires of the cache; None means 'any'."""

    dataset: str | None = None
    task: str | None = None
    label_set: str | None = "cityscapes-labelIds"
    num_label_ids: int | None = 34

    def check(self, path: Path, header: dict) -> None:
        for key in ("dataset", "task", "label_set", "num_label_ids"):
            want = getattr(self, key)
            if want is not None and header.get(key) != want:
                raise CacheError(f"{path}: cache header {key} is {header.get(key)!r}, but the config expects "
                                 f"{want!r}; rebuild the cache for this config or point the trainer at the right one")


@dataclass(frozen=True)
class SequenceRef:
    path: str
    name: str
    split: str
    frames: int
    height: int
    width: int


def scan(paths: list[str | Path], expect: Expectation | None = None, split: str | None = None) -> list[SequenceRef]:
    """Every sequence in the shards (checked against ``expect``), optionally one split only."""
    refs = []
    for path in paths:
        header = read_header(path)
        if expect is not None:
            expect.check(Path(path), header)
        for seq in header["sequences"]:
            if split is None or seq["split"] == split:
                refs.append(SequenceRef(str(path), seq["name"], seq["split"], seq["frames"], seq["height"], seq["width"]))
    return refs


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at p + flow(p) (flow (N, 2, H, W) in pixels), bilinear, border."""
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    x = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    y = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def compose_flows(flows: torch.Tensor, confidences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain k consecutive flows (k, 2, H, W) into one t -> t+k flow (2, H, W), and its confidence."""
    total, conf = flows[0:1], confidences[0:1]
    for k in range(1, flows.shape[0]):
        total = total + warp(flows[k : k + 1], total)
        conf = conf * warp(confidences[k : k + 1], total)
    return total[0], conf[0]


class ClipDataset(torch.utils.data.Dataset):
    """Clips of ``n_frames`` from cached sequences, with identical augmentation on every channel."""

    def __init__(
        self,
        shards: list[str | Path],
        n_frames: int = 3,
        max_t_step: int = 1,
        crop: tuple[int, int] | None = None,
        scale: tuple[float, float] = (1.0, 1.0),
        flip: bool = True,
        seed: int = 0,
        split: str | None = "train",
        expect: Expectation | None = None,
    ) -> None:
        if n_frames < 1 or max_t_step < 1:
            raise ValueError("n_frames and max_t_step must be >= 1")
        self.refs = [r for r in scan(shards, expect, split) if r.frames >= n_frames]
        if not self.refs:
            raise CacheError(f"no sequences of split {split!r} with at least {n_frames} frames in {list(map(str, shards))}")
        self.n_frames, self.max_t_step, self.crop = n_frames, max_t_step, crop
        self.scale, self.flip, self.seed, self.epoch = scale, flip, seed, 0
        self._handles: dict[str, object] = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self.refs)

    def set_epoch(self, epoch: int) -> None:
        """New random clips each epoch (call it like DistributedSampler.set_epoch)."""
        self.epoch = epoch

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handles"], state["_pid"] = {}, None  # file handles are reopened in each worker
        return state

    def _shard(self, path: str):
        from safetensors import safe_open

        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        if path not in self._handles:
            self._handles[path] = safe_open(path, framework="numpy")
        return self._handles[path]

    def _read(self, ref: SequenceRef, key: str, start: int, stop: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self._shard(ref.path).get_slice(f"{ref.name}/{key}")[start:stop]))

    def __getitem__(self, index: int) -> dict:
        ref = self.refs[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n = self.n_frames
        longest = (ref.frames - 1) // (n - 1) if n > 1 else 1
        step = int(rng.integers(1, min(self.max_t_step, longest) + 1))
        start = int(rng.integers(0, ref.frames - (n - 1) * step))
        stop = start + (n - 1) * step + 1
        frames = self._read(ref, "frames", start, stop)[::step].permute(0, 3, 1, 2).float()
        labels = self._read(ref, "labels", start, stop)[::step].float()[:, None]
        instances = self._read(ref, "instances", start, stop)[::step].int().float()[:, None]
        flow = self._read(ref, "flow", start, stop - 1).float()
        confidence = self._read(ref, "confidence", start, stop - 1).float()[:, None] / 255.0
        if step > 1:
            pairs = [compose_flows(flow[k * step : (k + 1) * step], confidence[k * step : (k + 1) * step])
                     for k in range(n - 1)]
            flow = torch.stack([p[0] for p in pairs]) if pairs else flow[:0]
            confidence = torch.stack([p[1] for p in pairs]) if pairs else confidence[:0]
        frames, labels, instances, flow, confidence = self._augment(rng, ref, frames, labels, instances, flow, confidence)
        return {
            "frames": frames.round().clamp(0, 255).to(torch.uint8),
            "labels": labels[:, 0].to(torch.uint8),
            "instances": instances[:, 0].to(torch.int32),
            "flow": flow.contiguous(),
            "confidence": confidence.contiguous(),
            "seq": ref.name,
            "start": start,
            "step": step,
        }

    def _augment(self, rng, ref, frames, labels, instances, flow, confidence):
        h, w = ref.height, ref.width
        sigma = float(rng.uniform(*self.scale))
        crop_w, crop_h = self.crop if self.crop else (round(w * sigma), round(h * sigma))
        sigma = max(sigma, crop_w / w, crop_h / h)  # never smaller than the crop
        new_w, new_h = max(crop_w, round(w * sigma)), max(crop_h, round(h * sigma))
        if (new_w, new_h) != (w, h):
            shrink = new_w < w
            frames = F.interpolate(frames, (new_h, new_w), mode="bilinear", align_corners=False, antialias=shrink)
            labels = F.interpolate(labels, (new_h, new_w), mode="nearest-exact")
            instances = F.interpolate(instances, (new_h, new_w), mode="nearest-exact")
            if flow.shape[0]:
                flow = F.interpolate(flow, (new_h, new_w), mode="bilinear", align_corners=False, antialias=shrink)
                flow = flow * torch.tensor([new_w / w, new_h / h]).view(1, 2, 1, 1)
                confidence = F.interpolate(confidence, (new_h, new_w), mode="bilinear", align_corners=False,
                                           antialias=shrink)
        x0 = int(rng.integers(0, new_w - crop_w + 1))
        y0 = int(rng.integers(0, new_h - crop_h + 1))
        window = (..., slice(y0, y0 + crop_h), slice(x0, x0 + crop_w))
        frames, labels, instances = frames[window], labels[window], instances[window]
        flow, confidence = flow[window], confidence[window]
        if self.flip and rng.random() < 0.5:
            frames, labels, instances = frames.flip(-1), labels.flip(-1), instances.flip(-1)
            flow, confidence = flow.flip(-1), confidence.flip(-1)
            flow = flow * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
        return frames, labels, instances, flow, confidence
