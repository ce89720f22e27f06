"""The semantic-map predictor of future video prediction (paper section 4, "Future video prediction").

The paper predicts future video in two steps: a generator predicts the future semantic maps from
the observed ones, then the trained vid2vid renders them (model/prediction.py). This module is the
first step, built the way vid2vid builds frames (Eq. 4) but in label space: from the last
``observed`` maps (class probabilities, one-hot for observed frames) it predicts

    p_t = (1 - m_t) * warp(p_{t-1}, w_t) + m_t * softmax(h_t)

a flow w_t that carries the last map's classes along their motion, an occlusion mask m_t and new
class scores h_t where something appears. Future maps are predicted one after another, each from
the maps before it (observed, then predicted), so any horizon can be rolled out.

With ``flow_prior`` (the default) the network also sees the motion of the step before, w_{t-1}
(for the first predicted map: the last observed backward flow, which the flow stage computed), and
predicts w_t as a change of it, w_t = w_{t-1} + dw_t; its mask starts near 0 (warp rather than
hallucinate). Untrained, it is the constant-motion guess that carries the last map along its last
flow step after step (demo val: 88.9% of pixels right over 8 maps against 83.1% for copying the
last map); training learns where motion changes and what appears.

Training (:func:`prediction_loss`): the negative log-likelihood of the true labelIds under p_t
over a rolled-out horizon, plus the flow loss of Eq. 8 (L1 to the ground-truth backward flow on
confident pixels). The paper does not publish this network; the layout here is vid2vid's global
generator (model/blocks.py: conv7, stride-2 encoder, residual blocks, transposed-convolution
decoder) with one input stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import conv7, decoder, encoder, init_weights, norm_layer, res_blocks
from model.flow_ops import warp
from model.generator import FLOW_SCALE
from model.losses import masked_l1
from pipeline.core.cityscapes_labels import NUM_LABEL_IDS


@dataclass(frozen=True)
class LabelPredictorConfig:
    num_labels: int = NUM_LABEL_IDS  # classes of a map (Cityscapes labelIds)
    observed: int = 4  # maps the prediction of the next one looks at
    ngf: int = 32
    n_downsample: int = 3
    n_blocks: int = 4
    norm: str = "instance"
    use_flow: bool = True  # False: every pixel's classes come from h_t (no warping, no mask)
    flow_prior: bool = True  # w_t = w_{t-1} + dw_t, the last observed flow as w_{t-1} of the first step

    def __post_init__(self) -> None:
        if self.observed < 1:
            raise ValueError(f"observed must be >= 1, got {self.observed}")
        if self.flow_prior and not self.use_flow:
            raise ValueError("flow_prior needs use_flow (there is no flow to start from)")


MASK_BIAS = -3.0  # with flow_prior: m_t starts at sigmoid(-3) = 0.05, the last map is warped


class LabelPredictor(nn.Module):
    """One step: (B, observed, C, H, W) class probabilities, oldest first (and with ``flow_prior``
    the previous step's backward flow (B, 2, H, W) in pixels) -> the next map's probabilities
    (B, C, H, W), its flow (B, 2, H, W) and mask (B, 1, H, W) (None without flow)."""

    def __init__(self, cfg: LabelPredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        norm = norm_layer(cfg.norm)
        deep = cfg.ngf * 2**cfg.n_downsample
        in_ch = cfg.observed * cfg.num_labels + (2 if cfg.flow_prior else 0)
        self.body = nn.Sequential(encoder(in_ch, cfg.ngf, cfg.n_downsample, norm),
                                  res_blocks(deep, cfg.n_blocks, norm), decoder(cfg.ngf, cfg.n_downsample, norm))
        self.scores = conv7(cfg.ngf, cfg.num_labels, None, activation=False)
        self.flow = conv7(cfg.ngf, 2, None, activation=False) if cfg.use_flow else None
        self.mask = conv7(cfg.ngf, 1, None, activation=False) if cfg.use_flow else None
        init_weights(self)
        if cfg.flow_prior:  # untrained: the last map carried along the previous step's flow
            nn.init.zeros_(self.flow[-1].weight)
            nn.init.zeros_(self.flow[-1].bias)
            nn.init.constant_(self.mask[-1].bias, MASK_BIAS)

    def forward(self, history: torch.Tensor, prior_flow: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        b, k, c, h, w = history.shape
        if k != self.cfg.observed or c != self.cfg.num_labels:
            raise ValueError(f"expected (B, {self.cfg.observed}, {self.cfg.num_labels}, H, W) maps, got "
                             f"{tuple(history.shape)}")
        inputs = history.reshape(b, k * c, h, w)
        if self.cfg.flow_prior:
            if prior_flow is None or prior_flow.shape != (b, 2, h, w):
                raise ValueError(f"flow_prior needs the previous step's flow (B, 2, H, W) = {(b, 2, h, w)}, got "
                                 f"{None if prior_flow is None else tuple(prior_flow.shape)}")
            inputs = torch.cat([inputs, prior_flow.to(inputs.dtype) / FLOW_SCALE], 1)
        features = self.body(inputs)
        hallucinated = F.softmax(self.scores(features).float(), dim=1)
        if self.flow is None:
            return hallucinated, None, None
        flow = self.flow(features).float() * FLOW_SCALE
        if self.cfg.flow_prior:
            flow = flow + prior_flow.float()
        mask = torch.sigmoid(self.mask(features).float())
        warped = warp(history[:, -1].float(), flow)
        return (1 - mask) * warped + mask * hallucinated, flow, mask

    def rollout(self, observed: torch.Tensor, steps: int, last_flow: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Predict ``steps`` maps after ``observed`` (B, T >= observed, C, H, W): (probabilities, flows)
        per predicted map, each predicted from the ``cfg.observed`` maps before it; ``last_flow``
        (with ``flow_prior``): the backward flow of the last observed map to the one before it, in
        pixels; each later step starts from the flow predicted before it."""
        history = list(observed[:, -self.cfg.observed:].unbind(1))
        maps, flows = [], []
        prior = last_flow
        for _ in range(steps):
            probs, flow, _ = self(torch.stack(history[-self.cfg.observed:], 1), prior)
            maps.append(probs)
            flows.append(flow)
            history.append(probs.to(observed.dtype))
            prior = flow
        return maps, flows


def prediction_loss(model: LabelPredictor, labels: torch.Tensor, flows: torch.Tensor, confidence: torch.Tensor,
                    lambda_flow: float = 1.0) -> tuple[torch.Tensor, dict]:
    """The loss of one clip batch: labels (B, T, H, W) labelIds, flows (B, T-1, 2, H, W) backward
    (flows[:, j]: frame j + 1 -> j), confidence (B, T-1, 1, H, W). The first ``cfg.observed`` maps
    are given (with ``flow_prior``, the flow between the last two of them too), the other
    T - observed are rolled out and scored: NLL of the true labels plus the flow loss."""
    k = model.cfg.observed
    steps = labels.shape[1] - k
    if steps < 1:
        raise ValueError(f"clips of {labels.shape[1]} maps leave nothing to predict after {k} observed")
    if model.cfg.flow_prior and k < 2:
        raise ValueError("flow_prior needs 2 observed maps (the flow between them starts the rollout)")
    one_hot = F.one_hot(labels.long(), model.cfg.num_labels).movedim(-1, 2).float()
    maps, predicted_flows = model.rollout(one_hot[:, :k], steps, flows[:, k - 2] if model.cfg.flow_prior else None)
    nll = torch.stack([F.nll_loss(torch.log(p.clamp_min(1e-6)), labels[:, k + i].long())
                       for i, p in enumerate(maps)]).mean()
    logs = {"nll": nll.detach()}
    loss = nll
    if predicted_flows[0] is not None and lambda_flow > 0:
        # the flow of predicted map k + i to the one before it: backward flow index k + i - 1
        flow = torch.stack([masked_l1(f, flows[:, k + i - 1], confidence[:, k + i - 1])
                            for i, f in enumerate(predicted_flows)]).mean()
        loss = loss + lambda_flow * flow
        logs["flow"] = flow.detach()
    with torch.no_grad():
        logs["accuracy"] = torch.stack([(p.argmax(1) == labels[:, k + i]).float().mean()
                                        for i, p in enumerate(maps)]).mean()
    return loss, logs
