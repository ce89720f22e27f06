"""Discriminators (paper section 3.2): the conditional image discriminator D_I and the video
discriminator D_V, both multi-scale PatchGANs (pix2pixHD's NLayerDiscriminator, LeakyReLU 0.2).

- D_I sees (semantic map s_t, frame x_t) pairs at ``num_scales`` image scales.
- D_V sees K consecutive frames and the K-1 ground-truth flows between them, divided by 20 as the
  official code does (the real frames' flow conditions both real and fake clips), at
  ``num_scales`` image scales; the trainer runs one D_V per temporal scale (frame strides 1, 3,
  9, ... as in the implementation details).

Every discriminator returns, per scale, the list of its layer outputs: the last is the patch
logit map for the GAN loss, the others feed the feature-matching loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import init_weights, norm_layer

FLOW_INPUT_DIVISOR = 20.0  # D_V reads flows / 20 (official vid2vid_model_D: flow_ref / 20)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        norm_cls = norm_layer(norm)
        layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))]
        channels = ndf
        for n in range(1, n_layers + 1):
            previous, channels = channels, min(ndf * 2**n, 512)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(previous, channels, 4, stride=stride, padding=2),
                                        norm_cls(channels), nn.LeakyReLU(0.2, True)))
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the input downsampled by 1, 2, 4, ... (3x3 average pooling)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_scales: int = 2,
                 norm: str = "instance") -> None:
        super().__init__()
        self.scales = nn.ModuleList([NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_scales)])
        self.n_layers = n_layers
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for k, discriminator in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(discriminator(x))
        return results


class ImageDiscriminator(MultiscaleDiscriminator):
    """D_I(s_t, x_t): the semantic input channels and the frame, concatenated."""

    def __init__(self, label_nc: int, output_nc: int = 3, **kwargs) -> None:
        super().__init__(label_nc + output_nc, **kwargs)

    def forward(self, labels: torch.Tensor, frame: torch.Tensor) -> list[list[torch.Tensor]]:
        return super().forward(torch.cat([labels, frame], dim=1))


class VideoDiscriminator(MultiscaleDiscriminator):
    """D_V(x_{t-K+1..t}, w_{t-K+1..t-1}): K frames and the K-1 flows between them, concatenated."""

    def __init__(self, k_frames: int = 3, output_nc: int = 3, **kwargs) -> None:
        super().__init__(output_nc * k_frames + 2 * (k_frames - 1), **kwargs)
        self.k_frames = k_frames

    def forward(self, frames: torch.Tensor, flows: torch.Tensor) -> list[list[torch.Tensor]]:
        """frames (B, K, 3, H, W), flows (B, K-1, 2, H, W)."""
        b, k, c, h, w = frames.shape
        if k != self.k_frames or flows.shape[1] != k - 1:
            raise ValueError(f"D_V takes {self.k_frames} frames and {self.k_frames - 1} flows, got {k} and {flows.shape[1]}")
        flows = flows.reshape(b, (k - 1) * 2, h, w) / FLOW_INPUT_DIVISOR
        return super().forward(torch.cat([frames.reshape(b, k * c, h, w), flows], 1))
