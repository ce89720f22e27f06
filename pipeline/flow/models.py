"""Learned optical flow for the flow stage (paper section 4: "FlowNet2 for the ground-truth flow"):
torchvision's RAFT (``raft_large``, ``raft_small``) and any ptlflow model (``ptlflow:<name>``,
``ptlflow:flownet2`` as in the paper), checkpoints through the weights registry.

Frame pairs are batched: one forward pass estimates t->t+1 and t+1->t for ``batch`` pairs at once,
on the GPU when there is one. The confidence is the forward-backward check of pipeline/flow/dis.py,
computed in torch beside the model. ``flow.weights: random`` builds the network untrained, which
only serves to time it (an EPE from random weights means nothing).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch
import torch.nn.functional as F

from model.flow_ops import warp
from pipeline.core.weights import (
    DEFAULT_ENTRIES,
    PTLFLOW_CHECKPOINTS,
    WeightsError,
    load_into,
    resolve,
)
from pipeline.flow import PTLFLOW_PREFIX

log = logging.getLogger("pipeline.flow.models")
TORCHVISION = {"raft_large", "raft_small"}


class TorchvisionRaft(torch.nn.Module):
    """RGB uint8-range pairs in, flow in pixels out; pads to a multiple of 8 (and at least 128 px,
    the size its correlation pyramid needs)."""

    def __init__(self, name: str, state: dict | None, source: str = ""):
        super().__init__()
        from torchvision.models.optical_flow import raft_large, raft_small

        self.net = (raft_large if name == "raft_large" else raft_small)(weights=None, progress=False)
        if state is not None:
            load_into(self.net, state, source)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        h, w = first.shape[2:]
        pad = (0, max(128, w + (-w) % 8) - w, 0, max(128, h + (-h) % 8) - h)
        first, second = (F.pad(x / 127.5 - 1.0, pad, mode="replicate") for x in (first, second))
        return self.net(first, second, num_flow_updates=12)[-1][:, :, :h, :w]


class PtlflowModel(torch.nn.Module):
    """A ptlflow model behind the same interface (ptlflow takes BGR in 0..1, [B, 2, 3, H, W])."""

    def __init__(self, name: str, checkpoint: str | None):
        super().__init__()
        try:
            import ptlflow
        except ImportError as err:
            raise WeightsError(f"flow mode 'ptlflow:{name}' needs ptlflow: pip install -e '.[flow]' ({err})") from None
        if name not in ptlflow.get_model_names():
            raise WeightsError(f"ptlflow has no model {name!r} (see ptlflow.get_model_names())")
        self.net = ptlflow.get_model(name, ckpt_path=checkpoint)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        images = (torch.stack([first, second], dim=1).flip(2) / 255.0).contiguous()  # RGB -> BGR
        return self.net({"images": images})["flows"][:, 0]


@functools.lru_cache(maxsize=2)
def load(mode: str, weights: str | None) -> torch.nn.Module:
    """The network of flow mode ``mode`` with its verified checkpoint (or untrained: 'random')."""
    if mode in TORCHVISION:
        if weights == "random":
            return TorchvisionRaft(mode, None).eval()
        entry = DEFAULT_ENTRIES[mode]
        path = resolve(entry, user_path=weights)
        return TorchvisionRaft(mode, torch.load(path, map_location="cpu", weights_only=True), str(path)).eval()
    if not mode.startswith(PTLFLOW_PREFIX):
        raise WeightsError(f"{mode!r} is not a learned flow mode (raft_large, raft_small, {PTLFLOW_PREFIX}<model>)")
    name = mode.removeprefix(PTLFLOW_PREFIX)
    if weights == "random":
        return PtlflowModel(name, None).eval()
    if weights is None and name not in PTLFLOW_CHECKPOINTS:
        raise WeightsError(f"no registry entry for ptlflow model {name!r} (have {sorted(PTLFLOW_CHECKPOINTS)}); "
                           "give its checkpoint file in flow.weights")
    path = resolve(DEFAULT_ENTRIES[PTLFLOW_CHECKPOINTS[name]], user_path=weights) if weights is None else weights
    return PtlflowModel(name, str(path)).eval()


def registry_entry(mode: str) -> str | None:
    """The weights-registry entry of a learned mode's checkpoint (None: a ptlflow model without one)."""
    if mode in TORCHVISION:
        return mode
    if mode.startswith(PTLFLOW_PREFIX):
        return PTLFLOW_CHECKPOINTS.get(mode.removeprefix(PTLFLOW_PREFIX))
    raise ValueError(f"{mode!r} is not a learned flow mode")


def consistency(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) 1 where forward (N, 2, H, W) and the backward flow at its target agree
    (the same test as pipeline/flow/dis.consistency, in torch)."""
    h, w = forward.shape[2:]
    back_at_target = warp(backward, forward)
    error = ((forward + back_at_target) ** 2).sum(1, keepdim=True)
    bound = 0.01 * ((forward**2).sum(1, keepdim=True) + (back_at_target**2).sum(1, keepdim=True)) + 0.5
    ys, xs = torch.meshgrid(torch.arange(h, device=forward.device), torch.arange(w, device=forward.device), indexing="ij")
    tx, ty = xs + forward[:, 0:1], ys + forward[:, 1:2]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ((error < bound) & inside).float()


@torch.inference_mode()
def estimate_batches(model: torch.nn.Module, frames, device: torch.device, batch: int = 4):
    """Per batch of frame pairs: (first pair index, forward, confidence, backward, backward
    confidence), numpy [N, ...]. ``frames``: a sequence of T RGB frames (a list, or a lazy one
    with len() and slicing, so only a batch is ever read)."""
    model = model.to(device)
    for start in range(0, len(frames) - 1, batch):
        chunk = torch.from_numpy(np.stack(frames[start:start + batch + 1])).to(device).permute(0, 3, 1, 2).float()
        first, second = chunk[:-1], chunk[1:]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            both = model(torch.cat([first, second]), torch.cat([second, first])).float()
        forward, backward = both.chunk(2)
        yield start, *(x.cpu().numpy() for x in (forward, consistency(forward, backward), backward,
                                                 consistency(backward, forward)))


def estimate(model: torch.nn.Module, frames: list[np.ndarray], device: torch.device, batch: int = 4):
    """Forward, confidence, backward, backward confidence (numpy, [T-1, ...]) for T RGB frames."""
    batches = [outputs for _, *outputs in estimate_batches(model, frames, device, batch)]
    return tuple(np.concatenate(parts) for parts in zip(*batches))
