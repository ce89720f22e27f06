"""The paper's future-prediction baselines (Table 3), compact re-implementations from their papers,
predicting RGB frames directly from the observed frames (frames in [-1, 1]).

- :class:`PredNet` (Lotter et al., ICLR 2017, "Deep predictive coding networks"): a stack of layers,
  each with a ConvLSTM representation R_l, a prediction A^_l = ReLU(conv(R_l)) (layer 0: the frame,
  tanh here), a target A_l (layer 0: the frame; above: a strided convolution of the error below) and
  an error E_l = [ReLU(A_l - A^_l), ReLU(A^_l - A_l)]; R_l is updated top-down from E_l, its own
  state and the upsampled R_{l+1}. Trained on the L1 error of layer 0 (the paper's "L_0"), from the
  second frame on. Simplified: strided convolutions instead of convolution + max-pooling, one
  ConvLSTM per layer.
- :class:`MCNet` (Villegas et al., ICLR 2017, "Decomposing motion and content"): a motion encoder
  (a ConvLSTM over frame differences x_t - x_{t-1}) and a content encoder (convolutions on the last
  frame x_t), their features combined by convolutions and decoded to x_{t+1} with residual
  connections from both encoders at every scale. Trained with the paper's L2 and gradient
  difference losses (GDL); simplified: no adversarial term, one ConvLSTM layer.

Both predict future frames by feeding their own predictions back after the observed frames, so any
horizon can be rolled out (:meth:`rollout`), and are trained the same way over a rolled-out horizon
(:func:`frame_prediction_loss`, model/prediction_trainer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FramePredictorConfig:
    kind: str = "prednet"  # prednet | mcnet
    ngf: int = 16  # channels of the first layer; doubled at each layer below the top
    layers: int = 3  # PredNet layers / MCNet scales

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.layers < 1:
            raise ValueError(f"layers must be >= 1, got {self.layers}")


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015): gates from a 3x3 convolution of [input, h]."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gates = nn.Conv2d(in_channels + channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.channels, *x.shape[-2:])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class PredNet(nn.Module):
    def __init__(self, cfg: FramePredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [3] + [cfg.ngf * 2**i for i in range(cfg.layers - 1)]  # A_l channels
        reps = [cfg.ngf * 2**i for i in range(cfg.layers)]  # R_l channels
        self.widths = widths
        self.cells = nn.ModuleList(
            ConvLSTMCell(2 * widths[l] + (reps[l + 1] if l + 1 < cfg.layers else 0), reps[l]) for l in range(cfg.layers))
        self.predict = nn.ModuleList(nn.Conv2d(reps[l], widths[l], 3, padding=1) for l in range(cfg.layers))
        self.target = nn.ModuleList(nn.Conv2d(2 * widths[l], widths[l + 1], 3, stride=2, padding=1)
                                    for l in range(cfg.layers - 1))

    def _top_down(self, state: dict) -> tuple[list[torch.Tensor], list]:
        """The representations R_l (top layer first) from the last step's errors and states."""
        n = self.cfg.layers
        reps, lstm = [None] * n, list(state["lstm"])
        for l in reversed(range(n)):
            inputs = [state["errors"][l]]
            if l + 1 < n:
                inputs.append(F.interpolate(reps[l + 1], size=state["errors"][l].shape[-2:], mode="nearest"))
            reps[l], lstm[l] = self.cells[l](torch.cat(inputs, 1), lstm[l])
        return reps, lstm

    def _initial_state(self, frame: torch.Tensor) -> dict:
        errors, (h, w) = [], frame.shape[-2:]
        for l in range(self.cfg.layers):
            errors.append(frame.new_zeros(frame.shape[0], 2 * self.widths[l], h, w))
            h, w = (h + 1) // 2, (w + 1) // 2  # the stride-2 target convolutions' output size
        return {"errors": errors, "lstm": [None] * self.cfg.layers}

    def step(self, frame: torch.Tensor, state: dict | None) -> tuple[torch.Tensor, dict]:
        """Take frame x_t (B, 3, H, W); returns (the prediction of x_t made before seeing it, the new state)."""
        state = state or self._initial_state(frame)
        reps, lstm = self._top_down(state)
        prediction = torch.tanh(self.predict[0](reps[0]))
        return prediction, self._observe(frame, prediction, reps, lstm)

    def _observe(self, frame: torch.Tensor, prediction: torch.Tensor, reps: list[torch.Tensor], lstm: list) -> dict:
        """The state after seeing ``frame``: bottom-up, each layer's prediction (layer 0: ``prediction``)
        against its target gives its errors, and the errors the next layer's target."""
        errors, target, predicted = [], frame, prediction
        for l in range(self.cfg.layers):
            if l > 0:
                predicted = F.relu(self.predict[l](reps[l]))
            errors.append(torch.cat([F.relu(target - predicted), F.relu(predicted - target)], 1))
            if l + 1 < self.cfg.layers:
                target = F.relu(self.target[l](errors[l]))
        return {"errors": errors, "lstm": lstm}

    def rollout(self, observed: torch.Tensor, steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(the predictions of observed frames 1..T-1, the ``steps`` predicted future frames: each
        prediction taken as the next input, PredNet's extrapolation mode)."""
        state, seen = None, []
        for t in range(observed.shape[1]):
            prediction, state = self.step(observed[:, t], state)
            if t > 0:
                seen.append(prediction)
        future = []
        for k in range(steps):
            reps, lstm = self._top_down(state)
            frame = torch.tanh(self.predict[0](reps[0]))
            future.append(frame)
            if k + 1 < steps:  # the prediction is the next input: its layer-0 error is 0
                state = self._observe(frame, frame, reps, lstm)
        return seen, future


class MCNet(nn.Module):
    def __init__(self, cfg: FramePredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [cfg.ngf * 2**i for i in range(cfg.layers)]

        def encoder():
            layers, previous = nn.ModuleList(), 3
            for i, w in enumerate(widths):
                layers.append(nn.Sequential(nn.Conv2d(previous, w, 3, stride=1 if i == 0 else 2, padding=1),
                                            nn.ReLU(True), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(True)))
                previous = w
            return layers

        self.motion, self.content = encoder(), encoder()
        self.motion_lstm = ConvLSTMCell(widths[-1], widths[-1])
        self.combine = nn.Sequential(nn.Conv2d(2 * widths[-1], widths[-1], 3, padding=1), nn.ReLU(True),
                                     nn.Conv2d(widths[-1], widths[-1], 3, padding=1), nn.ReLU(True))
        self.residuals = nn.ModuleList(nn.Conv2d(2 * w, w, 1) for w in widths)  # the encoders' skip features
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i], widths[i - 1], 4, stride=2, padding=1)
                                for i in range(cfg.layers - 1, 0, -1))
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)

    @staticmethod
    def _features(encoder: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in encoder:
            x = layer(x)
            out.append(x)
        return out

    def step(self, frame: torch.Tensor, previous: torch.Tensor, state) -> tuple[torch.Tensor, tuple]:
        """x_{t+1} from x_t and x_{t-1} (and the motion state): (prediction, new state)."""
        motion = self._features(self.motion, frame - previous)
        h, state = self.motion_lstm(motion[-1], state)
        content = self._features(self.content, frame)
        x = self.combine(torch.cat([h, content[-1]], 1))
        skips = [r(torch.cat([m, c], 1)) for r, m, c in zip(self.residuals, motion, content)]
        x = x + skips[-1]
        for i, up in enumerate(self.up):
            skip = skips[-2 - i]
            x = F.interpolate(F.relu(up(x)), size=skip.shape[-2:], mode="nearest") + skip
        return torch.tanh(self.out(x) + frame), state  # a residual on the last frame

    def rollout(self, observed: torch.Tensor, steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(the predictions of observed frames 2..T-1, the ``steps`` predicted future frames)."""
        state, seen = None, []
        for t in range(1, observed.shape[1]):
            prediction, state = self.step(observed[:, t], observed[:, t - 1], state)
            if t + 1 < observed.shape[1]:
                seen.append(prediction)
        future, previous = [prediction], observed[:, -1]
        for _ in range(steps - 1):
            frame = future[-1]
            prediction, state = self.step(frame, previous, state)
            future.append(prediction)
            previous = frame
        return seen, future


KINDS = {"prednet": PredNet, "mcnet": MCNet}


def build(cfg: FramePredictorConfig) -> nn.Module:
    return KINDS[cfg.kind](cfg)


def gradient_difference(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """MCNet's gradient difference loss (Mathieu et al. 2016), alpha 1: image gradients alike."""
    def grads(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()

    (fy, fx), (ry, rx) = grads(fake), grads(real)
    return (fy - ry).abs().mean() + (fx - rx).abs().mean()


def frame_prediction_loss(model: nn.Module, frames: torch.Tensor, observed: int) -> tuple[torch.Tensor, dict]:
    """frames (B, T, 3, H, W) in [-1, 1]: the first ``observed`` given, the rest rolled out and scored
    (PredNet: L1, its predictions of the observed frames too; MCNet: L2 + GDL)."""
    steps = frames.shape[1] - observed
    seen, future = model.rollout(frames[:, :observed], steps)
    if model.cfg.kind == "prednet":
        start = 1
        pairs = list(zip(seen + future, frames[:, start:].unbind(1)))
        loss = torch.stack([(p.float() - r).abs().mean() for p, r in pairs]).mean()
    else:
        start = 2
        pairs = list(zip(seen + future, frames[:, start:].unbind(1)))
        loss = torch.stack([F.mse_loss(p.float(), r) + gradient_difference(p.float(), r) for p, r in pairs]).mean()
    with torch.no_grad():
        future_l1 = torch.stack([(p.float() - frames[:, observed + i]).abs().mean() for i, p in enumerate(future)]).mean()
    return loss, {"future_l1": future_l1}
