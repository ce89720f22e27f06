"""3D-ResNeXt-101 (Hara, Kataoka and Satoh, "Can Spatiotemporal 3D CNNs Retrace the History of 2D
CNNs and ImageNet?", CVPR 2018), the Kinetics-400 video network whose features the vid2vid paper
uses for one of its two video FIDs. Built as in the authors' code (models/resnext.py, shortcut B,
cardinality 32) so their ``resnext-101-kinetics.pth`` (``{'arch', 'state_dict'}`` with
DataParallel's ``module.`` prefix) loads key for key.

Input: 16-frame clips at 112x112, RGB in 0..255 minus the ActivityNet mean (the authors'
``norm_value=1`` setting); features: the 2048-d global average pool before ``fc``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MEAN = (114.7748, 107.7354, 99.4750)
CLIP_SIZE = 112
CLIP_FRAMES = 16


class ResNeXtBottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes: int, planes: int, cardinality: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        mid = cardinality * (planes // 32)
        self.conv1 = nn.Conv3d(inplanes, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + residual)


class ResNeXt3D(nn.Module):
    def __init__(self, layers=(3, 4, 23, 3), cardinality: int = 32, num_classes: int = 400):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv3d(3, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        self.layer1 = self._layer(128, layers[0], cardinality)
        self.layer2 = self._layer(256, layers[1], cardinality, stride=2)
        self.layer3 = self._layer(512, layers[2], cardinality, stride=2)
        self.layer4 = self._layer(1024, layers[3], cardinality, stride=2)
        self.fc = nn.Linear(cardinality * 32 * ResNeXtBottleneck.expansion, num_classes)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1, 1), persistent=False)

    def _layer(self, planes: int, blocks: int, cardinality: int, stride: int = 1) -> nn.Sequential:
        out_planes = planes * ResNeXtBottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:  # shortcut type B: a projection
            downsample = nn.Sequential(nn.Conv3d(self.inplanes, out_planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm3d(out_planes))
        layers = [ResNeXtBottleneck(self.inplanes, planes, cardinality, stride, downsample)]
        self.inplanes = out_planes
        layers += [ResNeXtBottleneck(self.inplanes, planes, cardinality) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    @torch.inference_mode()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, H, W) RGB 0..255 -> (N, 2048) pooled features (clips resized to 112x112)."""
        n, t = clips.shape[:2]
        frames = F.interpolate(clips.flatten(0, 1).float(), size=(CLIP_SIZE, CLIP_SIZE), mode="bilinear",
                               align_corners=False)
        x = frames.view(n, t, 3, CLIP_SIZE, CLIP_SIZE).permute(0, 2, 1, 3, 4) - self.mean
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))


def state_dict_of_checkpoint(checkpoint: dict) -> dict:
    state = checkpoint.get("state_dict", checkpoint)
    return {key.removeprefix("module."): value for key, value in state.items()}


def last_pool(sample_duration: int = CLIP_FRAMES, sample_size: int = CLIP_SIZE) -> tuple[int, int]:
    """The authors' AvgPool3d kernel for their input size (the global pool here is equivalent)."""
    return math.ceil(sample_duration / 16), math.ceil(sample_size / 32)
