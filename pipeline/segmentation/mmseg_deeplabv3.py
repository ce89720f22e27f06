"""DeepLabV3 exactly as mmsegmentation builds it, in plain PyTorch, so that the published
Cityscapes model-zoo checkpoints load directly (paper section 4: "we use DeepLabV3 to obtain the
semantic maps" of every Cityscapes frame).

Architecture (mmseg 1.x ``configs/_base_/models/deeplabv3_r50-d8.py``):
- ``ResNetV1c`` backbone: a deep stem of three 3x3 convolutions instead of one 7x7, Bottleneck
  blocks with the stride on the 3x3 convolution, output stride 8 ("D8": strides 1,2,1,1 and
  dilations 1,1,2,4, the first block of a dilated stage using half the dilation);
- ``ASPPHead`` on stage 4: an image-pooling branch plus 1x1 and dilated 3x3 branches
  (dilations 1,12,24,36), concatenated, fused by a 3x3 ConvModule, classified by ``conv_seg``;
- ``FCNHead`` auxiliary head on stage 3 (training only; kept so the checkpoints load strictly).

State-dict keys and shapes match mmseg's (``tests/fixtures/mmseg_deeplabv3_r50_keys.json`` was
recorded from the real mmsegmentation 1.2.2 model). Outputs are Cityscapes trainIds (19 classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.cityscapes_labels import NUM_TRAIN_IDS

# mmseg's data preprocessor for the Cityscapes configs (RGB order, 0..255 input)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# the weights-registry entries of mmseg's Cityscapes checkpoints and the ResNet depth of each
# (labels.model; the config schema's enum lists the same names)
CHECKPOINT_DEPTHS = {"deeplabv3_r50_cityscapes": 50, "deeplabv3_r101_cityscapes": 101}


class ConvModule(nn.Sequential):
    """mmcv's ConvModule with BN + ReLU: children named ``conv`` and ``bn`` like its state dict."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.activate = nn.ReLU(inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetV1c(nn.Module):
    """ResNet-D8 with the deep stem (mmseg ``ResNetV1c``, ``contract_dilation=True``)."""

    def __init__(self, depth: int = 50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), stem_channels: int = 64):
        super().__init__()
        half = stem_channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem_channels
        for index, (blocks, stride, dilation) in enumerate(zip(DEPTHS[depth], strides, dilations)):
            planes = 64 * 2 ** index
            downsample = None
            if stride != 1 or inplanes != planes * 4:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes * 4))
            first_dilation = dilation // 2 if dilation > 1 else dilation  # contract_dilation
            layer = [Bottleneck(inplanes, planes, stride, first_dilation, downsample)]
            inplanes = planes * 4
            layer += [Bottleneck(inplanes, planes, 1, dilation) for _ in range(1, blocks)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.stem(x))
        outs = []
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
            outs.append(x)
        return outs


class ASPPHead(nn.Module):
    def __init__(self, in_channels: int = 2048, channels: int = 512, num_classes: int = NUM_TRAIN_IDS,
                 dilations=(1, 12, 24, 36)):
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(in_channels, channels, 1))
        self.aspp_modules = nn.ModuleList(
            ConvModule(in_channels, channels, 1 if d == 1 else 3, padding=0 if d == 1 else d, dilation=d)
            for d in dilations)
        self.bottleneck = ConvModule((len(dilations) + 1) * channels, channels, 3, padding=1)
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.image_pool(x), size=x.shape[2:], mode="bilinear", align_corners=False)
        x = self.bottleneck(torch.cat([pooled] + [branch(x) for branch in self.aspp_modules], dim=1))
        return self.conv_seg(self.dropout(x))


class FCNHead(nn.Module):
    def __init__(self, in_channels: int = 1024, channels: int = 256, num_classes: int = NUM_TRAIN_IDS):
        super().__init__()
        self.convs = nn.Sequential(ConvModule(in_channels, channels, 3, padding=1))
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dropout(self.convs(x)))


class DeepLabV3(nn.Module):
    """mmseg ``EncoderDecoder`` (backbone, decode_head, auxiliary_head); ``forward`` returns
    trainId logits at the input resolution from a float RGB batch in 0..255."""

    def __init__(self, depth: int = 50, num_classes: int = NUM_TRAIN_IDS):
        super().__init__()
        self.backbone = ResNetV1c(depth)
        self.decode_head = ASPPHead(num_classes=num_classes)
        self.auxiliary_head = FCNHead(num_classes=num_classes)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        features = self.backbone((rgb - self.mean) / self.std)
        logits = self.decode_head(features[3])
        return F.interpolate(logits, size=rgb.shape[2:], mode="bilinear", align_corners=False)


def state_dict_of_checkpoint(checkpoint: dict) -> dict:
    """The weights of an mmseg checkpoint file ({'meta', 'state_dict', ...}) or a bare state dict."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    return {key.removeprefix("module."): value for key, value in state.items()}
