"""Future video prediction (paper section 4, Table 3): the future frames of a sequence from its first
``observed`` frames, by each predictor compared.

- ``vid2vid`` (ours, the paper's two steps): the semantic-map predictor (model/label_predictor.py)
  rolls the observed labels forward, and the trained vid2vid generator renders the predicted maps,
  its history being the last observed real frames (synthesis with first frames 'real'). Predicted
  maps carry no instance ids: their instance edges are the class boundaries.
- ``prednet``, ``mcnet``: the paper's baselines (model/frame_predictors.py), rolling their own
  predictions forward from the observed frames.
- ``repeat``: the last observed frame repeated (a floor).
- ``flow_extrapolate``: the last observed frame carried along the last observed backward flow b
  (frame T -> T-1), motion assumed constant per pixel: frame T+k(p) = frame T(p + k * b(p)) (a floor).

Every predictor returns the predicted frames as (H, W, 3) uint8 arrays, one per future frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from model.flow_ops import warp
from model.label_predictor import LabelPredictor
from model.synthesis import Synthesizer

FLOORS = ("repeat", "flow_extrapolate")


def repeat_last(frames: np.ndarray, steps: int) -> list[np.ndarray]:
    """The last of ``frames`` (T, H, W, 3) ``steps`` times."""
    return [frames[-1].copy() for _ in range(steps)]


def extrapolate_flow(frames: np.ndarray, backward_flow: np.ndarray, steps: int) -> list[np.ndarray]:
    """frame T+k(p) = frame T(p + k * b(p)), b = ``backward_flow`` (2, H, W) of frame T to T-1, in pixels."""
    last = torch.from_numpy(np.ascontiguousarray(frames[-1])).permute(2, 0, 1)[None].float()
    flow = torch.from_numpy(np.asarray(backward_flow, np.float32))[None]
    out = []
    for k in range(1, steps + 1):
        moved = warp(last, k * flow, "bicubic")
        out.append(moved[0].permute(1, 2, 0).clamp(0, 255).round().byte().numpy())
    return out


@torch.no_grad()
def predict_frames(model, frames: np.ndarray, steps: int, device: torch.device) -> list[np.ndarray]:
    """A frame predictor's (PredNet, MCNet) ``steps`` future frames after ``frames`` (T, H, W, 3) uint8."""
    observed = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2)[None].float() / 127.5 - 1
    _, future = model.rollout(observed, steps)
    return [((f[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy() for f in future]


@torch.no_grad()
def predict_labels(predictor: LabelPredictor, labels: np.ndarray, steps: int, device: torch.device,
                   last_flow: np.ndarray | None = None) -> np.ndarray:
    """(steps, H, W) uint8 labelIds after the observed ``labels`` (T, H, W), the most likely class of
    each predicted map; ``last_flow`` (2, H, W): the backward flow of the last observed frame to the
    one before it, in pixels (needed by a predictor with ``flow_prior``)."""
    one_hot = F.one_hot(torch.from_numpy(labels.astype(np.int64)).to(device), predictor.cfg.num_labels)
    prior = None
    if predictor.cfg.flow_prior:
        if last_flow is None:
            raise ValueError("this label predictor starts from the last observed flow: pass last_flow")
        prior = torch.from_numpy(np.asarray(last_flow, np.float32)).to(device)[None]
    maps, _ = predictor.rollout(one_hot.movedim(-1, 1)[None].float(), steps, prior)
    return torch.stack([m[0].argmax(0) for m in maps]).byte().cpu().numpy()


def render_predicted(synthesizer: Synthesizer, frames: np.ndarray, labels: np.ndarray, instances: np.ndarray | None,
                     predicted_labels: np.ndarray) -> list[np.ndarray]:
    """vid2vid's frames for ``predicted_labels``, its history the last L observed frames and maps."""
    history = synthesizer.cfg.n_frames - 1
    if len(frames) < history:
        raise ValueError(f"the generator needs {history} observed frames as its history, got {len(frames)}")
    seq_labels = list(labels[len(labels) - history:]) + list(predicted_labels)
    if instances is None:  # a cache without instance maps: the model takes no instance edges
        seq_instances = [None] * len(seq_labels)
    else:
        seq_instances = list(instances[len(labels) - history:]) + [p.astype(np.int32) for p in predicted_labels]
    real = list(frames[len(frames) - history:])
    generated = list(synthesizer.frames(seq_labels, seq_instances, real, first_frame="real"))
    return generated[history:]
