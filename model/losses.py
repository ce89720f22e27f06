"""Training losses (paper section 3.2 and implementation details):

- GAN losses for D_I and D_V: LSGAN (default, as the official code), hinge, or non-saturating,
  summed over the discriminator's image scales;
- discriminator feature matching (pix2pixHD): L1 between D's features of real and fake inputs,
  each layer weighted 4 / (n_layers + 1) / num_D as the official code;
- VGG19 perceptual loss (relu1_1..relu5_1, weights 1/32..1); its weights come through the weights
  registry (pipeline/core/weights.py), the caller builds it only when they are there;
- the flow loss L_W of Eq. 8: L1 between the estimated flow and the ground-truth flow, and L1
  between the previous real frame warped by the estimated flow and the current real frame, both
  masked by the ground-truth flow's confidence (the official MaskedL1Loss);
- the official code's output temporal warp loss: L1 between the output x_t and the previous output
  warped by the ground-truth flow, masked by its confidence;
- the official code's mask regularisation (loss_W): L1 of the occlusion mask m_t toward 0 (the
  warped frame) on confident pixels, for generators that make their own first frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.flow_ops import warp

GAN_MODES = ("lsgan", "hinge", "nonsaturating")


class GANLoss:
    """Adversarial loss over multi-scale outputs (the last tensor of every scale's list)."""

    def __init__(self, mode: str = "lsgan") -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss {mode!r}; choose from {GAN_MODES}")
        self.mode = mode

    def _one(self, logits: torch.Tensor, real: bool, for_discriminator: bool) -> torch.Tensor:
        logits = logits.float()
        if self.mode == "lsgan":
            return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))
        if self.mode == "nonsaturating":
            return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))
        # hinge
        if for_discriminator:
            return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
        return -logits.mean()

    def __call__(self, outputs: list[list[torch.Tensor]], real: bool, for_discriminator: bool = True) -> torch.Tensor:
        losses = [self._one(scale[-1], real, for_discriminator) for scale in outputs]
        return torch.stack(losses).sum()


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """Sum over scales and intermediate layers of L1(fake, real), each weighted 4 / (n_layers + 1)
    / num_D as pix2pixHD and vid2vid do (an n_layers PatchGAN has n_layers + 1 intermediate
    outputs before its logits)."""
    num_scales = len(fake)
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake, real):
        intermediate = len(fake_scale) - 1  # n_layers + 1
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + F.l1_loss(f.float(), r.detach().float()) * (4.0 / intermediate) / num_scales
    return total


class VGGLoss(nn.Module):
    """Perceptual loss on VGG19 features of images in [-1, 1] (ImageNet normalisation inside)."""

    LAYERS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19.features
    WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

    def __init__(self, state_dict: dict | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        self.features = net.features[: self.LAYERS[-1] + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.LAYERS:
                out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        loss = fake.new_zeros((), dtype=torch.float32)
        for w, f, r in zip(self.WEIGHTS, self._features(fake), self._features(real)):
            loss = loss + w * F.l1_loss(f.float(), r.detach().float())
        return loss


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean(|a - b| * mask), the mask broadcast over channels (the official MaskedL1Loss)."""
    mask = mask.float().expand_as(a)
    return F.l1_loss(a.float() * mask, b.float() * mask)


def flow_loss(flow: torch.Tensor, flow_true: torch.Tensor, confidence: torch.Tensor,
              previous_real: torch.Tensor, current_real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for one frame: (||w~ - w||_1, ||warp(x_{t-1}, w~) - x_t||_1), both on confident pixels."""
    warped = warp(previous_real.float(), flow.float())
    return masked_l1(flow, flow_true, confidence), masked_l1(warped, current_real, confidence)


def mask_loss(mask: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """||m_t||_1 on confident pixels: where the true flow holds, Eq. 4 should reuse the warped
    frame rather than hallucinate (official loss_W; m_t = 1 takes h_t)."""
    return masked_l1(mask, torch.zeros_like(mask), confidence)


def temporal_warp_loss(frame: torch.Tensor, previous_frame: torch.Tensor, flow_true: torch.Tensor,
                       confidence: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """||x~_t - warp(x~_{t-1}, w_t)||_1 with the ground-truth flow, on confident pixels; the warped
    previous output is a constant target (official loss_G_Warp), warped as the generator warps."""
    target = warp(previous_frame.detach().float(), flow_true.float(), mode)
    return masked_l1(frame, target, confidence)
