"""The vid2vid objective (paper section 3.2, Eq. 5-8), built from the losses of model/losses.py.

    min_F ( max_{D_I} L_I(F, D_I) + max_{D_V} L_V(F, D_V) ) + lambda_W L_W(F)              (Eq. 5)

- :meth:`Objective.image_terms`: L_I (Eq. 6), the conditional image GAN loss of D_I on every
  generated frame x~_t given its semantic map s_t, with the official code's additions on the same
  predictions: discriminator feature matching (pix2pixHD) and the VGG loss, and all of them again
  on the hallucinated image h_t of every warped frame (``loss.raw_losses``).
- :func:`video_windows` and :meth:`Objective.video_terms`: L_V (Eq. 7), the video GAN loss of
  D_V on K consecutive frames x~_{t-K}^{t-1} given the ground-truth flows w_{t-K}^{t-2} between
  them; the sampler takes every K-frame window at frame stride K**s for temporal scale s (the
  official get_skipped_frames), weighted by ``loss.lambda_temporal``.
- :meth:`Objective.flow_terms`: L_W (Eq. 8), ||w~_t - w_t||_1 + ||warp(x_{t-1}, w~_t) - x_t||_1
  on confident pixels (``lambda_flow`` and ``lambda_flow_warp``), with the official code's two
  temporal terms: the output warp loss (x~_t against x~_{t-1} warped by w_t) and, for generators
  that make their own first frames, the occlusion-mask regularisation (loss_W).
- :meth:`Objective.__call__`: the total of Eq. 5 as the two losses a step minimises: G's terms
  summed (the generators' side of the min-max) and D's terms summed (each max as a minimisation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.profiler import record_function

from model.flow_ops import compose
from model.losses import GANLoss, VGGLoss, feature_matching, flow_loss, mask_loss, temporal_warp_loss
from model.options import LossOptions


@dataclass
class Terms:
    """Named loss terms, G's and D's, in the order they are summed."""

    g: dict[str, torch.Tensor] = field(default_factory=dict)
    d: dict[str, torch.Tensor] = field(default_factory=dict)

    def add(self, other: "Terms") -> "Terms":
        self.g.update(other.g)
        self.d.update(other.d)
        return self


def video_windows(outputs: list[dict], real: torch.Tensor, flows: torch.Tensor, k_frames: int,
                  temporal_scales: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """L_V's sampler (Eq. 7): for each temporal scale s, every K-frame window at frame stride K**s
    over the generated frames, ending at the last one and stepping back by K frames, batched; yields
    ``(s, fake windows, real windows, composed ground-truth backward flows between their frames)``.
    Frames of the single-image generator (``source`` 'first') enter detached."""
    k = k_frames
    fake_at = {o["t"]: (o["frame"] if o["source"] == "main" else o["frame"].detach()) for o in outputs}
    first, last = outputs[0]["t"], outputs[-1]["t"]
    composed: dict[tuple[int, int], torch.Tensor] = {}

    def flow_between(a: int, b: int) -> torch.Tensor:  # b -> a, chained from b down to a
        if (a, b) not in composed:
            composed[(a, b)] = compose([flows[:, j - 1] for j in range(b, a, -1)])
        return composed[(a, b)]

    for s in range(temporal_scales):
        stride = k**s
        span = (k - 1) * stride
        windows = [[end - span + i * stride for i in range(k)] for end in range(last, first + span - 1, -k)]
        if not windows:
            continue
        fake = torch.cat([torch.stack([fake_at[t] for t in idx], 1) for idx in windows])
        real_w = torch.cat([real[:, idx] for idx in windows])
        flow_w = torch.cat([torch.stack([flow_between(a, b) for a, b in zip(idx[:-1], idx[1:])], 1)
                            for idx in windows])
        yield s, fake, real_w, flow_w


class Objective:
    """Eq. 5 over one generated clip: ``objective(inputs, generated) -> (G loss, D loss, logs)``.

    Each discriminator sees a fake once: G's terms backpropagate into the generators, D's terms
    (the same predictions) only into the discriminators (``Trainer.train_step`` asks each backward
    pass for its own parameters' gradients)."""

    def __init__(self, loss: LossOptions, image_d: nn.Module, video_ds: Sequence[nn.Module], k_frames: int,
                 vgg: VGGLoss | None = None, score_first_frames: bool = False, regularise_mask: bool = False,
                 output_warp: bool = True, warp_mode: str = "bicubic") -> None:
        self.loss, self.image_d, self.video_ds, self.k_frames = loss, image_d, list(video_ds), k_frames
        self.vgg = vgg
        self.gan = GANLoss(loss.gan)
        self.score_first_frames = score_first_frames  # the first-frame generator is trained here: score it
        self.regularise_mask = regularise_mask and loss.lambda_mask > 0  # official: only with --no_first_img
        self.output_warp = output_warp and loss.lambda_output_warp > 0  # needs a generator with history
        self.warp_mode = warp_mode

    def _gan(self, pred_fake, pred_real, name: str, weight: float = 1.0) -> Terms:
        """G's adversarial and feature-matching terms and D's loss on one discriminator's predictions."""
        terms = Terms()
        terms.g[f"g_gan_{name}"] = self.gan(pred_fake, True, for_discriminator=False) * weight
        terms.g[f"g_feat_{name}"] = feature_matching(pred_fake, pred_real) * self.loss.lambda_feat * weight
        terms.d[f"d_{name}"] = 0.5 * (self.gan(pred_real, True) + self.gan(pred_fake, False))
        return terms

    def image_terms(self, inputs: dict, outputs: list[dict]) -> Terms:
        """L_I (Eq. 6) with feature matching and VGG, on every scored frame and on h_t of warped frames."""
        times = [o["t"] for o in outputs]
        fake = torch.stack([o["frame"] for o in outputs], 1)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        sem, real = flat(inputs["semantic"][:, times]), flat(inputs["frames"][:, times])
        pred_real = self.image_d(sem, real)
        images = {"image": (sem, flat(fake), real, pred_real)}
        raw = [i for i, o in enumerate(outputs) if o["warped"] is not None]
        if self.loss.raw_losses and raw:
            n_out = len(outputs)
            rows = torch.tensor([b * n_out + i for b in range(fake.shape[0]) for i in raw], device=fake.device)
            images["raw"] = (sem[rows], flat(torch.stack([outputs[i]["hallucinated"] for i in raw], 1)), real[rows],
                             [[layer[rows] for layer in scale] for scale in pred_real])
        terms = Terms()
        for name, (labels, fake_images, real_images, pred_real_) in images.items():
            terms.add(self._gan(self.image_d(labels, fake_images), pred_real_, name))
            if self.vgg is not None:
                terms.g[f"g_vgg_{name}"] = self.vgg(fake_images, real_images) * self.loss.lambda_vgg
        return terms

    def flow_terms(self, inputs: dict, every: list[dict]) -> Terms:
        """L_W (Eq. 8), the output warp loss and the mask regularisation, on G's frames after frame 0."""
        frames, lw = inputs["frames"], self.loss
        flow_terms, warp_terms, output_warp, mask_terms = [], [], [], []
        frame_at = {o["t"]: o["frame"] for o in every}
        for o in every:
            t = o["t"]
            if o["source"] != "main" or t < 1:
                continue
            gt_flow, confidence = inputs["flow"][:, t - 1], inputs["confidence"][:, t - 1]
            if o["flow"] is not None:
                epe, warped = flow_loss(o["flow"], gt_flow, confidence, frames[:, t - 1], frames[:, t])
                flow_terms.append(epe)
                warp_terms.append(warped)
            if self.regularise_mask and o["mask"] is not None:
                mask_terms.append(mask_loss(o["mask"], confidence))
            if self.output_warp:
                previous = frame_at.get(t - 1, frames[:, t - 1])  # before the clip's first output: the real frame
                output_warp.append(temporal_warp_loss(o["frame"], previous, gt_flow, confidence, self.warp_mode))
        terms = Terms()
        if flow_terms:
            terms.g["g_flow"] = torch.stack(flow_terms).mean() * lw.lambda_flow
            terms.g["g_flow_warp"] = torch.stack(warp_terms).mean() * lw.lambda_flow_warp
        if mask_terms:
            terms.g["g_mask"] = torch.stack(mask_terms).mean() * lw.lambda_mask
        if output_warp:
            terms.g["g_output_warp"] = torch.stack(output_warp).mean() * lw.lambda_output_warp
        return terms

    def video_terms(self, inputs: dict, every: list[dict]) -> Terms:
        """L_V (Eq. 7) for every temporal scale, on the windows of :func:`video_windows`."""
        terms = Terms()
        for s, fake_w, real_w, flow_w in video_windows(every, inputs["frames"], inputs["flow"], self.k_frames,
                                                       len(self.video_ds)):
            d_v = self.video_ds[s]
            terms.add(self._gan(d_v(fake_w, flow_w), d_v(real_w, flow_w), f"video{s}", self.loss.lambda_temporal))
        return terms

    def __call__(self, inputs: dict, generated: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Eq. 5: (G's terms summed, D's terms summed, every term by name and the frames scored)."""
        every = generated["outputs"]
        # what D_I and VGG score: G's frames, and the first-frame generator's where it is trained here
        scored = [o for o in every if o["source"] == "main" or self.score_first_frames]
        with record_function("losses.image"):  # D_I, feature matching, VGG
            terms = self.image_terms(inputs, scored)
        with record_function("losses.flow"):
            terms.add(self.flow_terms(inputs, every))
        with record_function("losses.video"):  # D_V
            terms.add(self.video_terms(inputs, every))
        logs = {**terms.g, **terms.d}
        logs["frames"] = torch.tensor(float(len(scored) * inputs["frames"].shape[0]))
        return torch.stack(list(terms.g.values())).sum(), torch.stack(list(terms.d.values())).sum(), logs
