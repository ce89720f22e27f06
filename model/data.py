"""Training clips from the cached tensors (docs/architecture.md, cache; paper section 4, training details).

:class:`ClipDataset` samples, for each sequence, a clip of ``n_frames`` frames with a random
temporal stride of up to ``max_t_step`` (the official recipe's ``max_t_step``), then applies one
random scale, crop and horizontal flip to every channel of the clip alike, as one affine resampling
(OpenCV): frames (bilinear), label and instance maps (nearest), or the face / pose condition maps
(bilinear, ``condition`` [T, C, H, W] uint8), forward and backward flow
(bilinear, vectors scaled with the image, x negated by a flip) and their confidences. For a stride
s > 1 the cached one-frame flows are composed, f(t->t+s)(p) = f(t->t+1)(p) + f(t+1->t+s)(p +
f(t->t+1)(p)) (backward flows chained from t+s down), confidences multiplied along the chain.

Randomness comes from (seed, epoch, index) alone, so a clip does not depend on the DataLoader
worker that makes it; shards are opened lazily in each worker process. This module reads only the
cache files, their header through the one reader (pipeline/core/cache_format.py), and checks it
against what the trainer expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.core.cache_format import (
    CacheError,
    CacheShard,
    condition_channels,
    condition_of,
    has_instance_maps,
    read_header,
)
from pipeline.core.cityscapes_labels import LABEL_SET, NUM_LABEL_IDS


@dataclass(frozen=True)
class Expectation:
    """What the trainer's config requires of the cache; None means 'any'."""

    dataset: str | None = None
    task: str | None = None
    label_set: str | None = LABEL_SET
    num_label_ids: int | None = NUM_LABEL_IDS
    label_nc: int | None = None  # channels of one semantic input frame (model.label_nc)

    def check(self, path: Path, header: dict) -> None:
        keys = ("dataset", "task") + (("label_set", "num_label_ids") if condition_of(header) == "labels" else ())
        for key in keys:
            want = getattr(self, key)
            if want is not None and header.get(key) != want:
                raise CacheError(path, f"cache header {key} is {header.get(key)!r}, but the config expects "
                                 f"{want!r}; rebuild the cache for this config or point the trainer at the right one")
        if self.label_nc is not None and condition_channels(header) != self.label_nc:
            if condition_of(header) == "maps":
                given = ", ".join(header["condition_channels"])
            else:
                given = "34 one-hot labelIds" + (" + instance edges" if has_instance_maps(header) else
                                                 ", no instance maps (instances mode none)")
            raise CacheError(path, f"the cache gives {condition_channels(header)} input channels per frame "
                             f"({given}) but model.label_nc is {self.label_nc}; set model.label_nc: "
                             f"{condition_channels(header)} in the run's options")


@dataclass(frozen=True)
class SequenceRef:
    path: str
    name: str
    split: str
    frames: int
    height: int
    width: int
    condition: str = "labels"  # 'labels' or 'maps' (model/data.py condition_of)
    instance_maps: bool = True  # labels: the cache keeps instance maps (not with instances mode none)


def scan(paths: list[str | Path], expect: Expectation | None = None, split: str | None = None) -> list[SequenceRef]:
    """Every sequence in the shards (checked against ``expect``), optionally one split only."""
    refs = []
    for path in paths:
        header = read_header(path)
        if expect is not None:
            expect.check(Path(path), header)
        for seq in header["sequences"]:
            if split is None or seq["split"] == split:
                refs.append(SequenceRef(str(path), seq["name"], seq["split"], seq["frames"], seq["height"], seq["width"],
                                        condition_of(header), has_instance_maps(header)))
    return refs


def _to_float32(array: np.ndarray) -> np.ndarray:
    """float16/uint8 -> float32 through torch (vectorised half conversion, much faster than numpy's)."""
    return torch.from_numpy(np.ascontiguousarray(array)).float().numpy()


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, interpolation: int) -> np.ndarray:
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def compose_flows(flows: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chain k consecutive flows (k, 2, H, W) into one t -> t+k flow (2, H, W), and its confidence
    (k, H, W) -> (H, W): f = f1 + f2(p + f1), c = c1 * c2(p + f1), and so on."""
    _, _, h, w = flows.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    total = flows[0].astype(np.float32)
    conf = confidences[0].astype(np.float32)
    for k in range(1, flows.shape[0]):
        map_x, map_y = grid_x + total[0], grid_y + total[1]
        step = flows[k].astype(np.float32, copy=False)
        total = total + np.stack([_remap(step[0], map_x, map_y, cv2.INTER_LINEAR),
                                  _remap(step[1], map_x, map_y, cv2.INTER_LINEAR)])
        conf = conf * _remap(confidences[k].astype(np.float32, copy=False), map_x, map_y, cv2.INTER_LINEAR)
    return total, conf


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
        flows: tuple[str, ...] = ("flow", "flow_backward"),
    ) -> None:
        if n_frames < 1 or max_t_step < 1:
            raise ValueError("n_frames and max_t_step must be >= 1")
        unknown = set(flows) - {"flow", "flow_backward"}
        if unknown:
            raise ValueError(f"flows: unknown {sorted(unknown)}; choose from 'flow', 'flow_backward'")
        self.flows = flows  # the trainer needs only the backward flow: skip the other's resampling
        self.refs = [r for r in scan(shards, expect, split) if r.frames >= n_frames]
        if not self.refs:
            raise CacheError(", ".join(map(str, shards)), f"no sequences of split {split!r} with at least {n_frames} frames")
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

    def _shard(self, path: str) -> CacheShard:
        if self._pid != os.getpid():  # first use in this process (a DataLoader worker, say)
            self._handles, self._pid = {}, os.getpid()
            cv2.setNumThreads(1)
        if path not in self._handles:
            self._handles[path] = CacheShard(path)
        return self._handles[path]

    def _read(self, ref: SequenceRef, key: str, start: int, stop: int) -> np.ndarray:
        return self._shard(ref.path).slice(ref.name, key, start, stop)

    def __getitem__(self, index: int) -> dict:
        ref = self.refs[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n = self.n_frames
        longest = (ref.frames - 1) // (n - 1) if n > 1 else 1
        step = int(rng.integers(1, min(self.max_t_step, longest) + 1))
        start = int(rng.integers(0, ref.frames - (n - 1) * step))
        stop = start + (n - 1) * step + 1
        frames = self._read(ref, "frames", start, stop)[::step]
        view = self._draw_view(rng, ref)
        width, height = view.size
        out = {
            "frames": torch.from_numpy(np.stack([view.apply(f, cv2.INTER_LINEAR) for f in frames])).permute(0, 3, 1, 2),
            "seq": ref.name,
            "start": start,
            "step": step,
        }
        if ref.condition == "labels":
            labels = self._read(ref, "labels", start, stop)[::step]
            out["labels"] = torch.from_numpy(np.stack([view.apply(m, cv2.INTER_NEAREST) for m in labels]))
            if ref.instance_maps:
                instances = self._read(ref, "instances", start, stop)[::step]
                out["instances"] = torch.from_numpy(
                    np.stack([view.apply(m, cv2.INTER_NEAREST) for m in instances]).astype(np.int32))
        else:  # sketch / pose maps: drawn lines, resampled smoothly like the frames, channel by channel
            maps = self._read(ref, "condition", start, stop)[::step]
            out["condition"] = torch.from_numpy(np.stack(
                [np.stack([view.apply(m[..., c], cv2.INTER_LINEAR) for c in range(m.shape[-1])]) for m in maps]))
        for key, conf_key, backward in (("flow", "confidence", False), ("flow_backward", "confidence_backward", True)):
            if key not in self.flows:
                continue
            flow = _to_float32(self._read(ref, key, start, stop - 1))
            confidence = self._read(ref, conf_key, start, stop - 1)
            if step > 1:  # chain the one-frame flows of each pair: forwards t..t+s, backwards t+s..t
                confidence = _to_float32(confidence) / 255.0
                order = slice(None, None, -1) if backward else slice(None)
                pairs = [compose_flows(flow[k * step : (k + 1) * step][order], confidence[k * step : (k + 1) * step][order])
                         for k in range(n - 1)]
                flow = np.stack([p[0] for p in pairs])
                confidence = np.stack([p[1] for p in pairs])
            confidence = torch.from_numpy(np.stack([view.apply(c, cv2.INTER_LINEAR) for c in confidence])).float()
            if step == 1:
                confidence = confidence / 255.0
            out[key] = torch.from_numpy(np.stack([view.apply_flow(f) for f in flow]).reshape(-1, 2, height, width))
            out[conf_key] = confidence.reshape(-1, 1, height, width)
        return out

    def _draw_view(self, rng, ref: SequenceRef) -> "View":
        h, w = ref.height, ref.width
        sigma = float(rng.uniform(*self.scale))
        crop_w, crop_h = self.crop if self.crop else (round(w * sigma), round(h * sigma))
        sigma = max(sigma, crop_w / w, crop_h / h)  # never smaller than the crop
        x0 = float(rng.uniform(0, w * sigma - crop_w))
        y0 = float(rng.uniform(0, h * sigma - crop_h))
        flip = bool(self.flip and rng.random() < 0.5)
        return View(sigma, x0, y0, (crop_w, crop_h), flip)


@dataclass(frozen=True)
class View:
    """One clip's augmentation: scale by ``sigma``, crop ``size`` at (x0, y0) of the scaled image,
    optionally mirror. Every channel is resampled through the same affine map (OpenCV warpAffine,
    inverse mapping: output pixel -> source position, pixel centres kept aligned)."""

    sigma: float
    x0: float
    y0: float
    size: tuple[int, int]  # (width, height) of the output
    flip: bool

    def matrix(self) -> np.ndarray:
        s = 1.0 / self.sigma
        if self.flip:  # output x -> mirrored crop column
            ax, bx = -s, (self.size[0] - 1 + self.x0 + 0.5) * s - 0.5
        else:
            ax, bx = s, (self.x0 + 0.5) * s - 0.5
        return np.array([[ax, 0.0, bx], [0.0, s, (self.y0 + 0.5) * s - 0.5]], np.float64)

    def apply(self, image: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.warpAffine(np.ascontiguousarray(image), self.matrix(), self.size,
                              flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def apply_flow(self, flow: np.ndarray) -> np.ndarray:
        """(2, H, W) flow in source pixels -> (2, h, w) in output pixels (scaled; x negated if mirrored)."""
        sign = -self.sigma if self.flip else self.sigma
        return np.stack([self.apply(flow[0], cv2.INTER_LINEAR) * sign, self.apply(flow[1], cv2.INTER_LINEAR) * self.sigma])
