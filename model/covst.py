"""The COVST baseline of the paper's Table 1 (Chen et al., "Coherent Online Video Style Transfer",
ICCV 2017), as vid2vid section 4 builds it: the pix2pixHD generator (the ``frame_by_frame`` run)
with its high-level features warped by the given optical flow inside the network, and no
adversarial training of its own. For each frame t the global generator's deepest features of
every branch (after its residual blocks, before the decoder) are blended with frame t-1's blended
features, warped by the source video's backward flow t -> t-1, wherever that flow is reliable:

    f'_t = c_t * warp(f'_{t-1}, w_{t->t-1}) + (1 - c_t) * f_t

with c_t the flow's forward-backward confidence from the cache; flow and confidence are resampled
to the features' resolution (the vectors scaled with it). The decoder and the local enhancers
then render every frame from these features, so fine detail is still made frame by frame.

    python -m pipeline.stages.covst --checkpoint results/demo/checkpoints/frame_by_frame/final.pt \
        --cache results/demo/cache/index.json --split val --output results/demo/synth/covst
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.flow_ops import warp
from model.synthesis import (
    SynthesisError,
    Synthesizer,
    sequence_inputs,
    write_sequence,
    write_summary,
)

log = logging.getLogger("model.covst")


class FeatureWarp:
    """The per-frame feature hooks of one sequence: each keeps the last blended features of its
    branch and blends the next frame's with them, warped by the source flow."""

    def __init__(self, flow_backward: np.ndarray, confidence: np.ndarray, device: torch.device) -> None:
        """flow_backward (T-1, 2, H, W), index t-1: t -> t-1; confidence (T-1, H, W) in 0..1."""
        self.flow = torch.from_numpy(np.asarray(flow_backward, np.float32)).to(device)
        self.confidence = torch.from_numpy(np.asarray(confidence, np.float32)).to(device)[:, None]
        self.previous: dict[str, torch.Tensor] = {}

    def _resampled(self, t: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        flow, confidence = self.flow[t - 1 : t], self.confidence[t - 1 : t]
        h, w = flow.shape[-2:]
        flow = F.interpolate(flow, size, mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([size[1] / w, size[0] / h], device=flow.device).view(1, 2, 1, 1)
        return flow, F.interpolate(confidence, size, mode="area")

    def __call__(self, t: int):
        def hook(name: str, features: torch.Tensor) -> torch.Tensor:
            if t > 0 and name in self.previous:
                flow, confidence = self._resampled(t, features.shape[-2:])
                features = confidence * warp(self.previous[name], flow) + (1 - confidence) * features
            self.previous[name] = features
            return features

        return hook


def run(checkpoint_path: Path, cache: list[str], split: str, output: Path, fps: float = 17.0,
        device: str | None = None, weights: str = "auto", rates: dict[str, float] | None = None) -> list[Path]:
    synth = Synthesizer.load(checkpoint_path, device, weights)
    if synth.cfg.use_history or synth.cfg.n_frames != 1:
        raise SynthesisError("COVST builds on a single-image (pix2pixHD) generator: model.n_frames 1, "
                             "use_history false (the frame_by_frame run)")
    written = []
    output.mkdir(parents=True, exist_ok=True)
    for name, n, labels, instances, frame_at in sequence_inputs(cache, split):
        flows = np.stack([frame_at("flow_backward", i) for i in range(n - 1)])
        confidence = np.stack([frame_at("confidence_backward", i) for i in range(n - 1)]).astype(np.float32) / 255
        hooks = FeatureWarp(flows, confidence, synth.device)
        written.append(write_sequence(synth.frames(labels, instances, hook=hooks), output, name,
                                      (rates or {}).get(name, fps)))
    write_summary(output, {"baseline": "covst", "checkpoint": str(checkpoint_path), "split": split,
                           "weights": synth.weights, "warped": "the global generator's deepest features",
                           "sequences": [p.stem for p in written]})
    return written
