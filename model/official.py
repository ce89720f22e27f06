"""NVIDIA's own vid2vid networks, layer for layer, so that the official checkpoints run here
(label2city_2048, label2city_1024_g1, edge2face_512 and their single-image generators;
docs/official_models.md). This layout adds to the project's one (model/generator.py); it does
not replace it, and it is for synthesis only.

Module names follow the official files (``model_down_seg.4.weight`` ...), so importing a file is a
renaming of its prefix (pipeline/tools/import_official.py); only the residual blocks are this
project's (``body`` for the official ``conv_block``). Where the official code differs from
model/generator.py, this module does as the official code does:

- one network per spatial scale (``latest_net_G{s}.pth``): CompositeGenerator at the coarsest
  scale, CompositeLocalGenerator for the finer ones; each scale composes a frame (Eq. 4 and the
  foreground prior, Eq. 9, with the foreground never warped) and keeps its own history of previous
  frames, so a step returns the frame of every scale (:attr:`GeneratorOutput.pyramid`);
- the input pyramid is a 3x3 average pooling (stride 2, pad 1, borders not counted), and the
  foreground mask is the current frame's foreground one-hot channels at each scale (soft at the
  coarser scales);
- the normalisation is batch norm in training mode: the official test script never calls
  ``eval()``, so each layer normalises by the batch's own statistics (at batch size 1, the
  image's) and applies the learnt scale and shift, whatever mode this module is in; the stored
  running statistics are unused; the single-image generators use instance norm without affine,
  as theirs;
- the warp samples at p + w(p), bilinear with border padding, grid corners aligned (PyTorch 0.4,
  which trained these models, had no other grid_sample), with the official arithmetic: a linspace
  grid in [-1, 1] plus the flow divided by (size - 1) / 2, so fp32 rounds as it did there
  (:func:`official_warp`);
- the one-hot input has 35 channels (label_nc 35: labelIds 0..34); this project's has 34, so a
  zero channel is inserted before each frame's instance edges;
- edge2face's first frames: the encoder E's features of the real frame, averaged per face part,
  pick the nearest training image in ``features.npy`` (the sum of squared differences over the
  parts and features), whose stored features per part condition Global_with_z. The official code
  also sums over parts absent from the frame, with values it never set; here only the parts
  present count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import conv7, decoder, down, encoder, norm_layer, res_blocks, up
from model.generator import FLOW_SCALE, GeneratorConfig, GeneratorOutput

BATCH_STATISTICS = functools.partial(nn.BatchNorm2d, track_running_stats=False)  # in eval() mode too
OFFICIAL_ONE_HOT = 35  # the official label_nc for Cityscapes (labelIds 0..34)
CHANNEL_MAX = 1024  # pix2pixHD caps its generator's width


def flat(*modules: nn.Module) -> list[nn.Module]:
    """The layers of nested Sequentials in order (the official networks are flat Sequentials)."""
    layers = []
    for module in modules:
        layers += flat(*module) if isinstance(module, nn.Sequential) else [module]
    return layers


def output_layer(channels: int, out: int, activation: nn.Module | None = None) -> nn.Sequential:
    """ReflectionPad(3) + 7x7 convolution [+ activation]: the official ``model_final_*``."""
    return nn.Sequential(*flat(conv7(channels, out, None, activation=False)), *([activation] if activation else []))


def official_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` sampled at p + ``flow`` (pixels), computed as the official resample computes it:
    the sampling grid is a linspace from -1 to 1 per axis plus the flow divided by (size - 1) / 2.
    model/flow_ops.py's warp is the same sampling with other rounding, which random networks
    amplify from frame to frame."""
    n, _, h, w = flow.shape
    across = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    down = torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=flow.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    scaled = torch.cat([flow[:, :1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    grid = (torch.cat([across, down], 1) + scaled).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """One level of the official input pyramid: 3x3 average, stride 2, borders not counted."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


@dataclass
class ScaleOutput:
    frame: torch.Tensor
    raw: torch.Tensor
    warped: torch.Tensor | None
    flow: torch.Tensor | None
    weight: torch.Tensor | None
    features: dict[str, torch.Tensor]  # decoder features for the next finer scale


class CompositeScale(nn.Module):
    """The composition shared by both scale networks (the official forward of each)."""

    flow_scale: float

    def decode(self, labels, previous, coarse) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, labels: torch.Tensor, previous: torch.Tensor, foreground: torch.Tensor | None,
                coarse: dict[str, torch.Tensor] | None = None) -> ScaleOutput:
        shared, features = self.decode(labels, previous, coarse)
        raw = self.model_final_img(features["image"])
        frame, warped, flow, weight = raw, None, None, None
        if hasattr(self, "model_final_flow"):
            flow = self.model_final_flow(features["flow"]) * self.flow_scale
            weight = self.model_final_w(features["flow"])
            warped = official_warp(previous[:, -3:], flow)
            frame = raw * weight + warped * (1 - weight)
        if hasattr(self, "indv_final"):
            features["foreground"] = self.foreground_features(labels, coarse)
            image = self.indv_final(features["foreground"])
            frame = image * foreground + frame * (1 - foreground)
            raw = image * foreground + raw * (1 - foreground)
        return ScaleOutput(frame, raw, warped, flow, weight, features)


class CompositeGenerator(CompositeScale):
    """The coarsest scale (``latest_net_G0.pth``): label and previous-frame streams summed, then
    the image and flow branches, and the separate foreground network."""

    def __init__(self, input_nc: int, prev_nc: int, ngf: int, n_downsample: int, n_blocks: int,
                 fg_ngf: int, use_flow: bool, output_nc: int = 3) -> None:
        super().__init__()
        norm, deep = BATCH_STATISTICS, ngf * 2**n_downsample
        self.flow_scale = FLOW_SCALE
        stream_blocks = n_blocks - n_blocks // 2
        self.model_down_seg = nn.Sequential(*flat(encoder(input_nc, ngf, n_downsample, norm)),
                                            *res_blocks(deep, stream_blocks, norm))
        self.model_down_img = nn.Sequential(*flat(encoder(prev_nc, ngf, n_downsample, norm)),
                                            *res_blocks(deep, stream_blocks, norm))
        self.model_res_img = res_blocks(deep, n_blocks // 2, norm)
        self.model_up_img = nn.Sequential(*flat(decoder(ngf, n_downsample, norm)))
        self.model_final_img = output_layer(ngf, output_nc, nn.Tanh())
        if use_flow:
            self.model_res_flow = res_blocks(deep, n_blocks // 2, norm)
            self.model_up_flow = nn.Sequential(*flat(decoder(ngf, n_downsample, norm)))
            self.model_final_flow = output_layer(ngf, 2)
            self.model_final_w = output_layer(ngf, 1, nn.Sigmoid())
        if fg_ngf:  # the foreground network's width (0: none)
            fg = fg_ngf
            self.indv_down = nn.Sequential(*flat(encoder(input_nc, fg, n_downsample, norm)))
            self.indv_res = res_blocks(fg * 2**n_downsample, n_blocks, norm)
            self.indv_up = nn.Sequential(*flat(decoder(fg, n_downsample, norm)))
            self.indv_final = output_layer(fg, output_nc, nn.Tanh())

    def decode(self, labels, previous, coarse):
        shared = self.model_down_seg(labels) + self.model_down_img(previous)
        features = {"image": self.model_up_img(self.model_res_img(shared))}
        if hasattr(self, "model_res_flow"):
            features["flow"] = self.model_up_flow(self.model_res_flow(shared))
        return shared, features

    def foreground_features(self, labels, coarse):
        return self.indv_up(self.indv_res(self.indv_down(labels)))


class CompositeLocalGenerator(CompositeScale):
    """A finer scale ``s`` (``latest_net_G{s}.pth``): both streams downsampled once, the coarser
    scale's decoder features added, its own residual blocks and one upsampling."""

    def __init__(self, input_nc: int, prev_nc: int, ngf: int, n_blocks_local: int,
                 fg_ngf: int, use_flow: bool, scale: int, output_nc: int = 3) -> None:
        super().__init__()
        norm = BATCH_STATISTICS
        self.flow_scale = FLOW_SCALE * 2**scale

        def upsample(channels: int) -> nn.Sequential:
            return nn.Sequential(*res_blocks(channels * 2, n_blocks_local, norm), *flat(up(channels * 2, channels, norm)))

        self.model_down_seg = nn.Sequential(*flat(encoder(input_nc, ngf, 1, norm)))
        self.model_down_img = nn.Sequential(*flat(encoder(prev_nc, ngf, 1, norm)))
        self.model_up_img = upsample(ngf)
        self.model_final_img = output_layer(ngf, output_nc, nn.Tanh())
        if use_flow:
            self.model_up_flow = upsample(ngf)
            self.model_final_flow = output_layer(ngf, 2)
            self.model_final_w = output_layer(ngf, 1, nn.Sigmoid())
        if fg_ngf:  # the foreground network's width (0: none)
            fg = fg_ngf
            self.indv_down = nn.Sequential(*flat(encoder(input_nc, fg, 1, norm)))
            self.indv_up = upsample(fg)
            self.indv_final = output_layer(fg, output_nc, nn.Tanh())

    def decode(self, labels, previous, coarse):
        shared = self.model_down_seg(labels) + self.model_down_img(previous)
        features = {"image": self.model_up_img(shared + coarse["image"])}
        if hasattr(self, "model_up_flow"):
            features["flow"] = self.model_up_flow(shared + coarse["flow"])
        return shared, features

    def foreground_features(self, labels, coarse):
        return self.indv_up(self.indv_down(labels) + coarse["foreground"])


def official_one_hot(semantic: torch.Tensor, frames: int, label_nc: int) -> torch.Tensor:
    """This project's per-frame [34 one-hot, instance edges] -> the official [35 one-hot, edges]
    (the inserted labelId-34 channel is zero); other inputs (face maps) pass unchanged."""
    if label_nc != OFFICIAL_ONE_HOT:
        return semantic
    b, _, h, w = semantic.shape
    per_frame = semantic.view(b, frames, label_nc, h, w)
    zero = per_frame.new_zeros(b, frames, 1, h, w)
    return torch.cat([per_frame[:, :, :-1], zero, per_frame[:, :, -1:]], 2).view(b, -1, h, w)


class OfficialVid2VidGenerator(nn.Module):
    """The official sequential generator: ``scales.0`` is G0 (the coarsest), ``scales.s`` is G{s}.
    The interface is model/generator.py's; ``previous`` is the frames t-L..t-1 at full size (the
    official code builds their pyramid by pooling, as for the first frames) or, as the synthesizer
    passes it after the first step, a list of them at every scale, finest first (each scale's
    own outputs)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        if not cfg.use_history or cfg.feat_nc:
            raise ValueError("the official layout is a sequential generator (use_history true) without encoder "
                             "features (feat_nc 0)")
        self.cfg = cfg
        self.official_nc = cfg.label_nc + (1 if cfg.label_nc == OFFICIAL_ONE_HOT else 0) + cfg.feat_nc
        input_nc, prev_nc = self.official_nc * cfg.n_frames, cfg.prev_nc
        global_ngf = cfg.ngf * 2**cfg.n_local
        widths = [global_ngf // 2**s for s in range(cfg.n_local + 1)]
        fg = [cfg.foreground_ngf(ngf) if cfg.foreground else 0 for ngf in widths]
        scales = [CompositeGenerator(input_nc, prev_nc, widths[0], cfg.n_downsample, cfg.n_blocks, fg[0],
                                     cfg.use_flow, cfg.output_nc)]
        scales += [CompositeLocalGenerator(input_nc, prev_nc, widths[s], cfg.n_blocks_local, fg[s], cfg.use_flow, s,
                                           cfg.output_nc)
                   for s in range(1, cfg.n_local + 1)]
        self.scales = nn.ModuleList(scales)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x`` at every scale, finest first (the official build_pyr)."""
        levels = [x]
        for _ in range(self.cfg.n_local):
            levels.append(pyramid_down(levels[-1]))
        return levels

    def forward(self, labels: torch.Tensor, previous, current_labels: torch.Tensor | None = None,
                scales: int | None = None, hook=None) -> GeneratorOutput:
        if hook is not None:
            raise ValueError("the official layout takes no feature hook")
        if scales not in (None, self.cfg.n_local):
            raise ValueError(f"the official layout runs all its scales ({self.cfg.n_local} local), not {scales}")
        inputs = self.pyramid(official_one_hot(labels, self.cfg.n_frames, self.cfg.label_nc))
        history = previous if isinstance(previous, (list, tuple)) else self.pyramid(previous)
        coarse, frames = None, []
        for s, network in enumerate(self.scales):  # coarsest first
            level = self.cfg.n_local - s
            foreground = self.foreground_mask(inputs[level]) if self.cfg.foreground else None
            out = network(inputs[level], history[level], foreground, coarse)
            coarse = out.features
            frames.insert(0, out.frame)
        return GeneratorOutput(out.frame, out.raw, out.warped, out.flow, out.weight, pyramid=frames)

    def foreground_mask(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w): the current frame's foreground one-hot channels summed, clipped to 1."""
        current = labels[:, -self.official_nc:]
        return current[:, list(self.cfg.foreground_labels)].sum(1, keepdim=True).clamp(0, 1)


# the single-image (pix2pixHD) generators that make the first frames (--use_single_G), and E

def _global_layers(input_nc: int, ngf: int, n_downsample: int, n_blocks: int, norm) -> list[nn.Module]:
    """pix2pixHD's GlobalGenerator without its output layer; widths capped at 1024."""
    width = [min(CHANNEL_MAX, ngf * 2**i) for i in range(n_downsample + 1)]
    layers = flat(conv7(input_nc, ngf, norm))
    layers += flat(*(down(width[i], width[i + 1], norm) for i in range(n_downsample)))
    layers += list(res_blocks(width[-1], n_blocks, norm))
    layers += flat(*(up(width[i + 1], width[i], norm) for i in reversed(range(n_downsample))))
    return layers


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator (``latest_net_G_512.pth``, ``latest_net_G_1024.pth``)."""

    def __init__(self, input_nc: int, output_nc: int = 3, ngf: int = 64, n_downsample: int = 3,
                 n_blocks: int = 9) -> None:
        super().__init__()
        norm = norm_layer("instance")
        self.model = nn.Sequential(*_global_layers(input_nc, ngf, n_downsample, n_blocks, norm),
                                   *output_layer(ngf, output_nc, nn.Tanh()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """pix2pixHD's global generator at half size plus local enhancers (``latest_net_G_2048.pth``)."""

    def __init__(self, input_nc: int, output_nc: int = 3, ngf: int = 32, n_downsample: int = 4, n_blocks: int = 9,
                 n_local_enhancers: int = 1, n_blocks_local: int = 3) -> None:
        super().__init__()
        norm = norm_layer("instance")
        self.n_local_enhancers = n_local_enhancers
        self.model = nn.Sequential(*_global_layers(input_nc, ngf * 2**n_local_enhancers, n_downsample, n_blocks, norm))
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            setattr(self, f"model{n}_1", nn.Sequential(*flat(encoder(input_nc, width, 1, norm))))
            tail = list(output_layer(ngf, output_nc, nn.Tanh())) if n == n_local_enhancers else []
            setattr(self, f"model{n}_2", nn.Sequential(*res_blocks(width * 2, n_blocks_local, norm),
                                                       *flat(up(width * 2, width, norm)), *tail))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = [x]
        for _ in range(self.n_local_enhancers):
            inputs.append(pyramid_down(inputs[-1]))
        out = self.model(inputs[-1])
        for n in range(1, self.n_local_enhancers + 1):
            out = getattr(self, f"model{n}_2")(getattr(self, f"model{n}_1")(inputs[self.n_local_enhancers - n]) + out)
        return out


class GlobalWithFeatures(nn.Module):
    """vid2vid's Global_with_z (``edge2face_single/latest_net_G.pth``): the encoder's feature maps
    ``z`` joined to the input, the residual blocks, the first upsampling and the output layer."""

    def __init__(self, input_nc: int, output_nc: int, nz: int, ngf: int = 64, n_downsample: int = 3,
                 n_blocks: int = 9) -> None:
        super().__init__()
        norm = norm_layer("instance")
        self.n_downsample = n_downsample
        width = [min(CHANNEL_MAX, ngf * 2**i) for i in range(n_downsample + 1)]
        self.model_downsample = nn.Sequential(*flat(conv7(input_nc + nz, ngf, norm)),
                                              *flat(*(down(width[i], width[i + 1], norm) for i in range(n_downsample))))
        self.model_resnet = res_blocks(width[-1] + nz, n_blocks, norm)
        ups = [up(width[i + 1] + (2 * nz if i == n_downsample - 1 else 0), width[i], norm)
               for i in reversed(range(n_downsample))]
        self.model_upsample = nn.Sequential(*flat(*ups))
        self.model_upsample_conv = output_layer(ngf + nz, output_nc, nn.Tanh())

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        z_deep = z
        for _ in range(self.n_downsample):
            z_deep = pyramid_down(z_deep)
        features = self.model_downsample(torch.cat([x, z], 1))
        features = self.model_resnet(torch.cat([features, z_deep], 1))
        features = self.model_upsample(torch.cat([features, z_deep], 1))
        return self.model_upsample_conv(torch.cat([features, z], 1))


class FeatureEncoder(nn.Module):
    """vid2vid's Encoder E (``edge2face_single/latest_net_E.pth``): an encoder-decoder whose output is
    averaged over each region of ``regions`` (the face parts)."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 16, n_downsample: int = 4) -> None:
        super().__init__()
        norm = norm_layer("instance")
        self.model = nn.Sequential(*flat(encoder(input_nc, ngf, n_downsample, norm)),
                                   *flat(decoder(ngf, n_downsample, norm)), *output_layer(ngf, output_nc, nn.Tanh()))

    def forward(self, image: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """``regions`` (B, 1, H, W) integer ids; each region gets its mean feature vector."""
        features = self.model(image)
        ids = regions[:, 0].long()
        pooled = torch.empty_like(features)
        for b in range(features.shape[0]):
            for region in torch.unique(ids[b]):
                inside = ids[b] == region
                pooled[b][:, inside] = features[b][:, inside].mean(1, keepdim=True)
        return pooled


SINGLE_IMAGE = {"global": GlobalGenerator, "local": LocalEnhancer, "global_with_features": GlobalWithFeatures}


class OfficialFirstFrames(nn.Module):
    """A single-image generator behind model/generator.py's interface, making the first frames
    (the official --use_single_G). ``spec``: ``kind`` (global, local or global_with_features) and
    its constructor's arguments. Street models take the 35-channel one-hot alone (the official
    code drops the instance edges for it). edge2face's (global_with_features) also has ``encoder``
    (FeatureEncoder's arguments) and a buffer ``reference`` of ``reference_shape`` (parts, training
    images, features + 1): features.npy, each part's features of each training image."""

    def __init__(self, spec: dict, label_nc: int, encoder: dict | None = None,
                 reference_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.label_nc = label_nc
        self.net = SINGLE_IMAGE[spec["kind"]](**{k: v for k, v in spec.items() if k != "kind"})
        if encoder is not None:
            self.encoder = FeatureEncoder(**encoder)
            # fp64, as features.npy stores them (the official code fills its feature maps from it)
            self.register_buffer("reference", torch.zeros(reference_shape, dtype=torch.float64))

    def forward(self, labels: torch.Tensor, previous=None, current_labels=None, scales=None, hook=None,
                real: torch.Tensor | None = None) -> GeneratorOutput:
        """``labels`` the frame's input; edge2face: ``current_labels`` (B, H, W) the face parts and
        ``real`` (B, 3, H, W) the real frame in [-1, 1], whose features pick the look."""
        if hook is not None:
            raise ValueError("the official layout takes no feature hook")
        if isinstance(self.net, GlobalWithFeatures):
            if real is None or current_labels is None or not hasattr(self, "encoder"):
                raise ValueError("edge2face's first frames need the real frames, the face parts and the encoder "
                                 "with features.npy (import the model with pipeline.tools.import_official)")
            frame = self.net(labels, self.face_features(real, current_labels))
            return GeneratorOutput(frame, frame, None, None, None)
        x = labels
        if self.label_nc == OFFICIAL_ONE_HOT:
            x = official_one_hot(labels, 1, self.label_nc)[:, :OFFICIAL_ONE_HOT]
        frame = self.net(x)
        return GeneratorOutput(frame, frame, None, None, None)

    def face_features(self, real: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W): per face part, the features of the training image nearest to ``real``'s."""
        parts = parts.long()
        encoded = self.encoder(real, parts[:, None])
        features = encoded.shape[1]
        out = torch.empty_like(encoded)
        for b in range(real.shape[0]):
            present = torch.unique(parts[b])
            mine = torch.stack([encoded[b][:, parts[b] == label][:, 0] for label in present])  # (P, F)
            theirs = self.reference[present, :, :features].to(mine.dtype)  # (P, images, F)
            nearest = ((theirs - mine[:, None]) ** 2).sum((0, 2)).argmin()
            for label in present:
                out[b][:, parts[b] == label] = self.reference[label, nearest, :features, None].to(out.dtype)
        return out
