"""The sequential generator F of vid2vid (paper section 3.1, Eq. 3, 4 and 9).

F(x_{t-L..t-1}, s_{t-L..t}) = (1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_t          (Eq. 4)

with the foreground/background prior (Eq. 9): h_t = (1 - m_B) * h_F + m_B * h_B, where m_B is 1 on
background classes of s_t. The paper puts this h_t into Eq. 4, so foreground pixels are warped
too (``warp_foreground=True``, the default); the official code never warps them
(``warp_foreground=False``: x_t = (1 - m_B) * h_F + m_B * [(1 - m_t) * warp + m_t * h_B]).

Layout of one scale, as the official implementation's CompositeGenerator:

- label stream: conv7 + n_downsample stride-2 convolutions + n_blocks - n_blocks // 2 residual
  blocks on the L+1 semantic maps (each one-hot + instance edges [+ encoder features]);
- previous-frame stream: the same layers (own weights) on the L previous frames; the two streams
  are summed;
- image branch: n_blocks // 2 residual blocks, transposed-convolution decoder, conv7 -> tanh: h_B;
- flow + mask branch: its own n_blocks // 2 residual blocks and decoder, sharing everything but the
  output layers between the flow w_t (conv7, x 20 * 2^s at scale s) and the occlusion mask m_t
  (conv7 -> sigmoid);
- foreground network (Eq. 9): a separate encoder, n_blocks residual blocks and decoder on the
  semantic maps alone (ngf / 2 wide when n_downsample > 2), conv7 -> tanh: h_F.

Coarse-to-fine (section 3.1, "Spatio-temporally progressive training"; pix2pixHD's local enhancer):
the global generator runs at 1/2^k resolution and k local enhancers add detail. Each enhancer
encodes the full-resolution inputs with one stride-2 convolution, adds the coarser scale's decoder
features of the same branch, runs its own residual blocks and upsamples; output heads exist per
scale, so a model trained at 512x256 loads into the 1024x512 one and keeps training.

Ablations are flags: ``use_flow=False`` hallucinates every pixel (no warping); ``use_history=False``
with ``n_frames=1`` is pix2pixHD (one semantic frame in, no previous frames); ``foreground=False``
drops Eq. 9. ``hook`` lets a caller edit the global generator's deepest features of each branch
before they are decoded (the COVST baseline warps them, model/covst.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import conv7, decoder, encoder, init_weights, norm_layer, res_blocks
from model.flow_ops import WARP_MODES, warp
from pipeline.core.cityscapes_labels import THING_IDS

# Cityscapes thing classes (labelIds): person, rider, car, truck, bus, caravan, trailer, train,
# motorcycle, bicycle
CITYSCAPES_FOREGROUND = THING_IDS
FLOW_SCALE = 20.0  # the flow head's output times 20 at the global scale, 20 * 2^s at local scale s

LAYOUTS = ("project", "official")

FeatureHook = Callable[[str, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GeneratorConfig:
    label_nc: int = 35  # channels of one semantic input frame (34 one-hot + instance edges)
    feat_nc: int = 0  # encoder feature channels appended to each semantic frame (multimodal)
    output_nc: int = 3
    n_frames: int = 3  # L + 1: the current semantic map and L past ones (L past generated frames)
    ngf: int = 64  # channels at the finest scale; the global generator has ngf * 2**n_local
    n_downsample: int = 3
    n_blocks: int = 9  # residual blocks of the global generator: per stream + per branch
    n_local: int = 0  # local enhancers: 1 -> 2x the global resolution, 2 -> 4x
    n_blocks_local: int = 3
    norm: str = "instance"
    foreground: bool = True
    foreground_labels: tuple[int, ...] = field(default_factory=lambda: CITYSCAPES_FOREGROUND)
    warp_foreground: bool = True  # Eq. 9 as the paper (True) or as the official code (False)
    use_flow: bool = True
    use_history: bool = True
    # interpolation of Eq. 4's warp of x_{t-1} (and of the output warp loss's target); the
    # official code's is bilinear, which halves a frame's detail at each sub-pixel shift, so that
    # a video made of warped frames blurs frame by frame (benchmarks/warp_sharpness.py)
    warp_mode: str = "bicubic"
    # 'project': this module's networks; 'official': NVIDIA's, layer for layer, for imported
    # checkpoints (model/official.py; synthesis only)
    layout: str = "project"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if self.warp_mode not in WARP_MODES:
            raise ValueError(f"warp_mode must be one of {WARP_MODES}, got {self.warp_mode!r}")
        if self.use_history and self.n_frames < 2:
            raise ValueError("use_history needs n_frames >= 2 (L = n_frames - 1 previous frames); "
                             "a frame-by-frame model sets use_history: false")

    @property
    def input_nc(self) -> int:
        return (self.label_nc + self.feat_nc) * self.n_frames

    @property
    def prev_nc(self) -> int:
        return self.output_nc * (self.n_frames - 1)

    @property
    def warps(self) -> bool:
        """Whether frames are composed with the warped previous frame (Eq. 4)."""
        return self.use_flow and self.use_history

    def foreground_ngf(self, ngf: int) -> int:
        return ngf // 2 if self.n_downsample > 2 else ngf


@dataclass
class GeneratorOutput:
    frame: torch.Tensor  # the synthesized frame x~_t, in [-1, 1]
    hallucinated: torch.Tensor  # h_t (after the fg/bg prior)
    warped: torch.Tensor | None  # warp(x_{t-1}, w_t)
    flow: torch.Tensor | None  # w_t, pixels at the output resolution (samples x_{t-1} at p + w_t(p))
    mask: torch.Tensor | None  # m_t: 1 = hallucinate, 0 = copy the warped previous frame
    # the frame at every scale, finest first, where each scale keeps its own history (the official
    # layout); None: the next step's previous frames are the frames themselves
    pyramid: list[torch.Tensor] | None = None


class Branch(nn.Module):
    """Residual blocks, then upsampling: the body of one output branch."""

    def __init__(self, channels: int, blocks: int, n_up: int, out_channels: int, norm) -> None:
        super().__init__()
        self.blocks = res_blocks(channels, blocks, norm)
        self.decoder = decoder(out_channels, n_up, norm)

    def forward(self, x: torch.Tensor, hook: FeatureHook | None = None, name: str = "") -> torch.Tensor:
        x = self.blocks(x)
        if hook is not None:
            x = hook(name, x)
        return self.decoder(x)


class Heads(nn.Module):
    """Output layers of one scale: image (tanh), foreground image, flow (x flow_scale) and mask."""

    def __init__(self, cfg: GeneratorConfig, channels: int, fg_channels: int, flow_scale: float) -> None:
        super().__init__()
        self.flow_scale = flow_scale
        self.image = nn.Sequential(conv7(channels, cfg.output_nc, None, activation=False), nn.Tanh())
        self.foreground = (nn.Sequential(conv7(fg_channels, cfg.output_nc, None, activation=False), nn.Tanh())
                           if cfg.foreground else None)
        self.flow = conv7(channels, 2, None, activation=False) if cfg.warps else None
        self.mask = nn.Sequential(conv7(channels, 1, None, activation=False), nn.Sigmoid()) if cfg.warps else None


class GlobalGenerator(nn.Module):
    """The coarsest scale: two input streams, the image and flow branches, the foreground network."""

    def __init__(self, cfg: GeneratorConfig, ngf: int) -> None:
        super().__init__()
        norm = norm_layer(cfg.norm)
        n_down = cfg.n_downsample
        deep = ngf * 2**n_down
        stream_blocks, branch_blocks = cfg.n_blocks - cfg.n_blocks // 2, cfg.n_blocks // 2

        def stream(in_ch: int) -> nn.Sequential:
            return nn.Sequential(encoder(in_ch, ngf, n_down, norm), res_blocks(deep, stream_blocks, norm))

        self.labels = stream(cfg.input_nc)
        self.previous = stream(cfg.prev_nc) if cfg.use_history else None
        self.image = Branch(deep, branch_blocks, n_down, ngf, norm)
        self.flow = Branch(deep, branch_blocks, n_down, ngf, norm) if cfg.warps else None
        fg = cfg.foreground_ngf(ngf)
        self.foreground_encoder = encoder(cfg.input_nc, fg, n_down, norm) if cfg.foreground else None
        self.foreground = Branch(fg * 2**n_down, cfg.n_blocks, n_down, fg, norm) if cfg.foreground else None
        self.heads = Heads(cfg, ngf, fg, FLOW_SCALE)

    def features(self, labels, previous, hook: FeatureHook | None = None) -> dict[str, torch.Tensor]:
        shared = self.labels(labels)
        if self.previous is not None:
            shared = shared + self.previous(previous)
        feats = {"image": self.image(shared, hook, "image")}
        if self.flow is not None:
            feats["flow"] = self.flow(shared, hook, "flow")
        if self.foreground is not None:
            feats["foreground"] = self.foreground(self.foreground_encoder(labels), hook, "foreground")
        return feats


class LocalEnhancer(nn.Module):
    """One finer scale: full-resolution inputs downsampled once, plus the coarser branch features."""

    def __init__(self, cfg: GeneratorConfig, ngf: int, scale: int) -> None:
        super().__init__()
        norm = norm_layer(cfg.norm)
        self.labels = encoder(cfg.input_nc, ngf, 1, norm)
        self.previous = encoder(cfg.prev_nc, ngf, 1, norm) if cfg.use_history else None
        self.image = Branch(ngf * 2, cfg.n_blocks_local, 1, ngf, norm)
        self.flow = Branch(ngf * 2, cfg.n_blocks_local, 1, ngf, norm) if cfg.warps else None
        fg = cfg.foreground_ngf(ngf)
        self.foreground_encoder = encoder(cfg.input_nc, fg, 1, norm) if cfg.foreground else None
        self.foreground = Branch(fg * 2, cfg.n_blocks_local, 1, fg, norm) if cfg.foreground else None
        self.heads = Heads(cfg, ngf, fg, FLOW_SCALE * 2**scale)

    def features(self, labels, previous, coarse: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shared = self.labels(labels)
        if self.previous is not None:
            shared = shared + self.previous(previous)
        feats = {"image": self.image(shared + coarse["image"])}
        if self.flow is not None:
            feats["flow"] = self.flow(shared + coarse["flow"])
        if self.foreground is not None:
            feats["foreground"] = self.foreground(self.foreground_encoder(labels) + coarse["foreground"])
        return feats


class Vid2VidGenerator(nn.Module):
    """F with k local enhancers. Inputs (B = batch):

    labels:   (B, n_frames * (label_nc + feat_nc), H, W), oldest first, the current map last
    previous: (B, (n_frames - 1) * 3, H, W) generated frames t-L..t-1 in [-1, 1], oldest first;
              ignored (may be None) when use_history is False
    """

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.global_generator = GlobalGenerator(cfg, cfg.ngf * 2**cfg.n_local)
        self.local_enhancers = nn.ModuleList(
            [LocalEnhancer(cfg, cfg.ngf * 2 ** (cfg.n_local - 1 - k), scale=k + 1) for k in range(cfg.n_local)])
        self.register_buffer("foreground_ids", torch.tensor(sorted(cfg.foreground_labels), dtype=torch.long),
                             persistent=False)
        init_weights(self)

    def finest_scale(self, scales: int) -> nn.Module:
        """The module of the finest of ``scales`` active scales (trained alone after it is added)."""
        return self.local_enhancers[scales - 1] if scales else self.global_generator

    def forward(self, labels: torch.Tensor, previous: torch.Tensor | None,
                current_labels: torch.Tensor | None = None, scales: int | None = None,
                hook: FeatureHook | None = None) -> GeneratorOutput:
        """``current_labels`` (B, H, W) labelIds of frame t, for the fg/bg prior. ``scales`` runs the
        global generator plus the first (coarsest) ``scales`` enhancers, the inputs being at that
        finest active resolution (progressive training grows it; default: all)."""
        scales = self.cfg.n_local if scales is None else scales
        if not 0 <= scales <= self.cfg.n_local:
            raise ValueError(f"scales must be in 0..{self.cfg.n_local}, got {scales}")
        if not self.cfg.use_history:
            previous = None
        pyramid = [(labels, previous)]  # full resolution first; the global generator takes the last
        for _ in range(scales):
            labels_, previous_ = pyramid[-1]
            pyramid.append((F.avg_pool2d(labels_, 2), F.avg_pool2d(previous_, 2) if previous_ is not None else None))
        feats = self.global_generator.features(*pyramid[-1], hook=hook)
        heads = self.global_generator.heads
        for k in range(scales):  # coarsest enhancer first
            enhancer = self.local_enhancers[k]
            feats = enhancer.features(*pyramid[scales - 1 - k], feats)
            heads = enhancer.heads
        return self._compose(feats, heads, pyramid[0][1], current_labels)

    def _background(self, current_labels: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """m_B of Eq. 9: (B, 1, H, W), 1 on background classes of s_t."""
        if current_labels is None:
            raise ValueError("the foreground prior needs the current labelIds (current_labels)")
        labels = current_labels
        if labels.shape[-2:] != like.shape[-2:]:
            labels = F.interpolate(labels[:, None].float(), like.shape[-2:], mode="nearest")[:, 0]
        return (~torch.isin(labels.long(), self.foreground_ids)).unsqueeze(1).to(like.dtype)

    def _compose(self, feats, heads: Heads, previous, current_labels) -> GeneratorOutput:
        background_image = heads.image(feats["image"])
        hallucinated = background_image
        if heads.foreground is not None:  # Eq. 9
            background = self._background(current_labels, background_image)
            foreground_image = heads.foreground(feats["foreground"])
            hallucinated = background * background_image + (1 - background) * foreground_image
        if heads.flow is None:
            return GeneratorOutput(hallucinated, hallucinated, None, None, None)
        flow = heads.flow(feats["flow"]) * heads.flow_scale
        mask = heads.mask(feats["flow"])
        last = previous[:, -self.cfg.output_nc:]
        if last.shape[-2:] != flow.shape[-2:]:
            last = F.interpolate(last, flow.shape[-2:], mode="bilinear", align_corners=False)
        warped = warp(last, flow, self.cfg.warp_mode)
        if heads.foreground is None or self.cfg.warp_foreground:  # Eq. 4 on h_t (the paper)
            frame = (1 - mask) * warped + mask * hallucinated
        else:  # the official code: foreground pixels are h_F, never warped
            composed = (1 - mask) * warped + mask * background_image
            frame = background * composed + (1 - background) * foreground_image
        return GeneratorOutput(frame, hallucinated, warped, flow, mask)
