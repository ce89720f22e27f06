"""The sequential generator F of vid2vid (paper section 3.1, Eq. 3, 4 and 9).

F(x_{t-L..t-1}, s_{t-L..t}) = (1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_t          (Eq. 4)

with the foreground/background prior (Eq. 9): h_t = (1 - m_B) * h_F + m_B * h_B, where m_B is 1 on
background classes of s_t. Layout, following the official implementation (CompositeGenerator):

- label encoder (the L+1 semantic maps, each one-hot + instance edges [+ encoder features]) and
  previous-frame encoder (the L generated frames): conv7 + n_down stride-2 convolutions; summed;
- a shared residual trunk (n_blocks - n_blocks // 2 blocks) on the summed features;
- image branch: residual blocks (n_blocks // 2), transposed-convolution decoder, conv7 -> tanh: h_B;
- flow + mask branch: its own residual blocks and decoder, sharing everything but the output
  layers between flow w_t (conv7, x20 as in the official code) and occlusion mask m_t (sigmoid);
- foreground branch (optional): residual blocks and decoder on the label features only -> h_F.

Coarse-to-fine (section 3.1, "Spatio-temporally progressive training"; pix2pixHD's local enhancer):
the global generator runs at 1/2^k resolution and k local enhancers add detail. Each enhancer
encodes the full-resolution inputs with one stride-2 convolution, adds the coarser scale's decoder
features of the same branch, runs its own residual blocks and upsamples; output heads exist per
scale, so a model trained at 512x256 loads into the 1024x512 one and keeps training.

Ablations are flags: ``use_flow=False`` hallucinates every pixel (no warping); ``use_history=False``
drops the previous frames (pix2pixHD frame by frame); ``foreground=False`` drops Eq. 9.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import conv7, decoder, encoder, norm_layer, res_blocks
from model.flow_ops import warp

# Cityscapes thing classes (labelIds): person, rider, car, truck, bus, caravan, trailer, train,
# motorcycle, bicycle
CITYSCAPES_FOREGROUND = (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)
FLOW_SCALE = 20.0


@dataclass
class GeneratorConfig:
    label_nc: int = 35  # channels of one semantic input frame (34 one-hot + instance edges)
    feat_nc: int = 0  # encoder feature channels appended to each semantic frame (multimodal)
    output_nc: int = 3
    n_frames: int = 3  # L + 1: the current semantic map and L past ones (L past generated frames)
    ngf: int = 64  # channels at the finest scale; the global generator has ngf * 2**n_local
    n_downsample: int = 3
    n_blocks: int = 9  # residual blocks of the global generator: shared trunk + each branch
    n_local: int = 0  # local enhancers: 1 -> 2x the global resolution, 2 -> 4x
    n_blocks_local: int = 3
    norm: str = "instance"
    foreground: bool = True
    foreground_labels: tuple[int, ...] = field(default_factory=lambda: CITYSCAPES_FOREGROUND)
    use_flow: bool = True
    use_history: bool = True

    @property
    def input_nc(self) -> int:
        return (self.label_nc + self.feat_nc) * self.n_frames

    @property
    def prev_nc(self) -> int:
        return self.output_nc * (self.n_frames - 1)


@dataclass
class GeneratorOutput:
    frame: torch.Tensor  # the synthesized frame x~_t, in [-1, 1]
    hallucinated: torch.Tensor  # h_t (after the fg/bg prior)
    warped: torch.Tensor | None  # warp(x_{t-1}, w_t)
    flow: torch.Tensor | None  # w_t, pixels at the output resolution (samples x_{t-1} at p + w_t(p))
    mask: torch.Tensor | None  # m_t: 1 = hallucinate, 0 = copy the warped previous frame


class _Heads(nn.Module):
    """Output layers of one scale: image (tanh), foreground image, flow and occlusion mask."""

    def __init__(self, cfg: GeneratorConfig, channels: int) -> None:
        super().__init__()
        self.image = nn.Sequential(conv7(channels, cfg.output_nc, None, activation=False), nn.Tanh())
        self.foreground = (nn.Sequential(conv7(channels, cfg.output_nc, None, activation=False), nn.Tanh())
                           if cfg.foreground else None)
        self.flow = conv7(channels, 2, None, activation=False) if cfg.use_flow and cfg.use_history else None
        self.mask = (nn.Sequential(conv7(channels, 1, None, activation=False), nn.Sigmoid())
                     if cfg.use_flow and cfg.use_history else None)


class _Branches(nn.Module):
    """Residual blocks + decoder per branch (image, flow, foreground) on shared input features."""

    def __init__(self, cfg: GeneratorConfig, channels: int, blocks: int, n_up: int, out_channels: int, norm) -> None:
        super().__init__()
        warping = cfg.use_flow and cfg.use_history
        self.image = nn.Sequential(res_blocks(channels, blocks, norm), decoder(out_channels, n_up, norm))
        self.flow = nn.Sequential(res_blocks(channels, blocks, norm), decoder(out_channels, n_up, norm)) if warping else None
        self.foreground = (nn.Sequential(res_blocks(channels, blocks, norm), decoder(out_channels, n_up, norm))
                           if cfg.foreground else None)


class GlobalGenerator(nn.Module):
    """The coarsest scale: encoders, the three branches, and output heads."""

    def __init__(self, cfg: GeneratorConfig, ngf: int) -> None:
        super().__init__()
        norm = norm_layer(cfg.norm)
        deep = ngf * 2**cfg.n_downsample
        self.labels = encoder(cfg.input_nc, ngf, cfg.n_downsample, norm)
        self.previous = encoder(cfg.prev_nc, ngf, cfg.n_downsample, norm) if cfg.use_history else None
        self.foreground_labels = encoder(cfg.input_nc, ngf, cfg.n_downsample, norm) if cfg.foreground else None
        self.trunk = res_blocks(deep, cfg.n_blocks - cfg.n_blocks // 2, norm)
        self.branches = _Branches(cfg, deep, max(cfg.n_blocks // 2, 1), cfg.n_downsample, ngf, norm)
        self.heads = _Heads(cfg, ngf)

    def features(self, labels, previous) -> dict[str, torch.Tensor]:
        shared = self.labels(labels)
        if self.previous is not None:
            shared = shared + self.previous(previous)
        shared = self.trunk(shared)
        feats = {"image": self.branches.image(shared)}
        if self.branches.flow is not None:
            feats["flow"] = self.branches.flow(shared)
        if self.branches.foreground is not None:
            feats["foreground"] = self.branches.foreground(self.foreground_labels(labels))
        return feats


class LocalEnhancer(nn.Module):
    """One finer scale: full-resolution inputs downsampled once, plus the coarser branch features."""

    def __init__(self, cfg: GeneratorConfig, ngf: int) -> None:
        super().__init__()
        norm = norm_layer(cfg.norm)
        self.labels = encoder(cfg.input_nc, ngf, 1, norm)
        self.previous = encoder(cfg.prev_nc, ngf, 1, norm) if cfg.use_history else None
        self.foreground_labels = encoder(cfg.input_nc, ngf, 1, norm) if cfg.foreground else None
        self.branches = _Branches(cfg, ngf * 2, cfg.n_blocks_local, 1, ngf, norm)
        self.heads = _Heads(cfg, ngf)

    def features(self, labels, previous, coarse: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shared = self.labels(labels)
        if self.previous is not None:
            shared = shared + self.previous(previous)
        feats = {"image": self.branches.image(shared + coarse["image"])}
        if self.branches.flow is not None:
            feats["flow"] = self.branches.flow(shared + coarse["flow"])
        if self.branches.foreground is not None:
            feats["foreground"] = self.branches.foreground(self.foreground_labels(labels) + coarse["foreground"])
        return feats


class Vid2VidGenerator(nn.Module):
    """F with k local enhancers. Inputs (B = batch):

    labels:   (B, n_frames * (label_nc + feat_nc), H, W), oldest first, the current map last
    previous: (B, (n_frames - 1) * 3, H, W) generated frames t-L..t-1 in [-1, 1], oldest first
              (zeros before the sequence starts); ignored when use_history is False
    """

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.global_generator = GlobalGenerator(cfg, cfg.ngf * 2**cfg.n_local)
        self.local_enhancers = nn.ModuleList(
            [LocalEnhancer(cfg, cfg.ngf * 2 ** (cfg.n_local - 1 - k)) for k in range(cfg.n_local)])
        self.register_buffer("foreground_ids", torch.tensor(sorted(cfg.foreground_labels), dtype=torch.long),
                             persistent=False)

    def forward(self, labels: torch.Tensor, previous: torch.Tensor | None,
                current_labels: torch.Tensor | None = None, scales: int | None = None) -> GeneratorOutput:
        """``current_labels`` (B, H, W) labelIds of frame t, for the fg/bg prior. ``scales`` runs the
        global generator plus the first (coarsest) ``scales`` enhancers, the inputs being at that
        finest active resolution (progressive training grows it; default: all)."""
        scales = self.cfg.n_local if scales is None else scales
        if not 0 <= scales <= self.cfg.n_local:
            raise ValueError(f"scales must be in 0..{self.cfg.n_local}, got {scales}")
        pyramid = [(labels, previous)]  # full resolution first; the global generator takes the last
        for _ in range(scales):
            labels_, previous_ = pyramid[-1]
            pyramid.append((F.avg_pool2d(labels_, 2), F.avg_pool2d(previous_, 2) if previous_ is not None else None))
        feats = self.global_generator.features(*pyramid[-1])
        heads = self.global_generator.heads
        for k in range(scales):  # coarsest enhancer first
            enhancer = self.local_enhancers[k]
            feats = enhancer.features(*pyramid[scales - 1 - k], feats)
            heads = enhancer.heads
        return self._compose(feats, heads, pyramid[0][1], current_labels)

    def _compose(self, feats, heads: _Heads, previous, current_labels) -> GeneratorOutput:
        hallucinated = heads.image(feats["image"])
        if heads.foreground is not None:
            if current_labels is None:
                raise ValueError("the foreground prior needs the current labelIds (current_labels)")
            labels = current_labels
            if labels.shape[-2:] != hallucinated.shape[-2:]:
                labels = F.interpolate(labels[:, None].float(), hallucinated.shape[-2:], mode="nearest")[:, 0]
            background = (~torch.isin(labels.long(), self.foreground_ids)).unsqueeze(1).to(hallucinated.dtype)
            hallucinated = background * hallucinated + (1 - background) * heads.foreground(feats["foreground"])
        if heads.flow is None:
            return GeneratorOutput(hallucinated, hallucinated, None, None, None)
        flow = heads.flow(feats["flow"]) * FLOW_SCALE
        mask = heads.mask(feats["flow"])
        last = previous[:, -self.cfg.output_nc:]
        if last.shape[-2:] != flow.shape[-2:]:
            last = F.interpolate(last, flow.shape[-2:], mode="bilinear", align_corners=False)
        warped = warp(last, flow)
        frame = (1 - mask) * warped + mask * hallucinated
        return GeneratorOutput(frame, hallucinated, warped, flow, mask)
