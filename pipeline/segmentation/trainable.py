"""The segmenter the pipeline trains itself (labels mode ``train``): torchvision's DeepLabV3
(MobileNetV3-Large or ResNet-50 backbone, output stride 16 / 8; optionally with DeepLabV3+'s
stride-4 decoder and a stride-2 stage after it, for thin classes) on the dataset's annotated frames,
19 Cityscapes trainIds with 255 ignored. This is what the paper did for Cityscapes: a DeepLabV3
trained on the fine annotations, then run on every frame.

The checkpoint (``results/<ds>/segmenter/model.pt``) holds the architecture name, the state dict,
the validation mIoU and the settings, so :func:`load` rebuilds it without the config.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import (
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
)
from torchvision.models.segmentation.deeplabv3 import ASPP

from pipeline.core.checkpoint_files import load_checkpoint
from pipeline.core.cityscapes_labels import NUM_TRAIN_IDS
from pipeline.core.weights import (
    DEFAULT_ENTRIES,
    WeightsError,
    load_into,
    load_state_dict,
)

NUM_CLASSES = NUM_TRAIN_IDS
IGNORE = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = {
    "mobilenet_v3_large": (deeplabv3_mobilenet_v3_large, "mobilenet_v3_large_imagenet"),
    "resnet50": (deeplabv3_resnet50, "resnet50_imagenet"),
}


# the stride-4 feature map a decoder reads: (layer name in the backbone, its channels)
LOW_LEVEL = {"mobilenet_v3_large": ("3", 24), "resnet50": ("layer1", 256)}
# the stride-2 feature map the fine stage reads
STRIDE_2 = {"mobilenet_v3_large": ("1", 16), "resnet50": ("relu", 64)}


class LowLevelDecoder(nn.Module):
    """DeepLabV3+'s decoder (Chen et al. 2018, section 3.2) on torchvision's DeepLabV3: the ASPP
    features, upsampled to stride 4, joined with projected stride-4 backbone features and refined
    by two 3x3 convolutions. Thin classes (poles, signs) are below DeepLabV3's stride-16 output on
    small frames; this gives them stride-4 detail. With ``fine`` (a :class:`FineStage`) the
    refined features go on to stride 2 before the classifier."""

    def __init__(self, low_channels: int, num_classes: int, aspp_channels: int = 256, channels: int = 96,
                 fine: FineStage | None = None):
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(low_channels, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU())
        classifier = [] if fine is not None else [nn.Conv2d(channels, num_classes, 1)]
        self.refine = nn.Sequential(
            nn.Conv2d(aspp_channels + 48, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            *classifier)
        self.fine = fine

    def forward(self, aspp: torch.Tensor, low: torch.Tensor, stride_2: torch.Tensor | None = None) -> torch.Tensor:
        aspp = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.refine(torch.cat([aspp, self.project(low)], 1))
        return out if self.fine is None else self.fine(out, stride_2)


class FineStage(nn.Module):
    """One more decoder stage at stride 2 (``fine_channels``): the decoder's stride-4 features,
    upsampled, joined with projected stride-2 backbone features (the stem's), a depthwise-separable
    3x3 convolution and the classifier. On 256x128 frames poles and lights are one to three pixels
    wide, under one stride-4 cell. On a CPU it costs 2% of a training step at 256x128 (3% of an
    inference pass; 20-35% at 512x256) and gave +0.04 held-out mIoU on synthcity after 5 minutes."""

    def __init__(self, in_channels: int, stride_2_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(stride_2_channels, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        joined = in_channels + 16
        self.refine = nn.Sequential(
            nn.Conv2d(joined, joined, 3, padding=1, groups=joined, bias=False), nn.BatchNorm2d(joined), nn.ReLU(),
            nn.Conv2d(joined, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, num_classes, 1))

    def forward(self, features: torch.Tensor, stride_2: torch.Tensor) -> torch.Tensor:
        features = F.interpolate(features, size=stride_2.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(torch.cat([features, self.project(stride_2)], 1))


def deeplab_head(in_channels: int, num_classes: int, channels: int) -> nn.Sequential:
    """torchvision's ``DeepLabHead`` (ASPP with rates 12 / 24 / 36, 3x3 conv, 1x1 classifier; the
    same state-dict keys) with its width as an argument: at 256 channels on MobileNetV3's 960
    features the head costs about four times the backbone, so small frames on a CPU train faster
    with a narrower one (``aspp_channels``)."""
    return nn.Sequential(ASPP(in_channels, [12, 24, 36], channels),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                         nn.Conv2d(channels, num_classes, 1))


class TorchvisionDeepLabV3(nn.Module):
    """torchvision DeepLabV3 taking RGB in 0..255 and returning trainId logits; ``decoder=True``
    adds DeepLabV3+'s stride-4 decoder (:class:`LowLevelDecoder`); ``aspp_channels`` /
    ``decoder_channels`` set the head's width (the arguments' defaults, 256 / 96, are torchvision's
    ASPP and the decoder of older checkpoints; the config's are 128 / 64); ``fine_channels`` > 0
    (with the decoder) adds the stride-2 :class:`FineStage` of that width (0: none, as in older
    checkpoints; the config's is 32)."""

    def __init__(self, backbone: str = "mobilenet_v3_large", num_classes: int = NUM_CLASSES, input_scale: float = 1.0,
                 decoder: bool = False, aspp_channels: int = 256, decoder_channels: int = 96, fine_channels: int = 0):
        super().__init__()
        self.input_scale = input_scale  # > 1: run the network on an upsampled frame (finer output stride)
        if backbone not in BACKBONES:
            raise ValueError(f"segmenter backbone {backbone!r} unknown (have {sorted(BACKBONES)})")
        builder, _ = BACKBONES[backbone]
        self.backbone_name = backbone
        self.net = builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        self.aspp_channels, self.decoder_channels = int(aspp_channels), int(decoder_channels)
        if self.aspp_channels != 256:
            in_channels = self.net.classifier[0].convs[0][0].in_channels
            self.net.classifier = deeplab_head(in_channels, num_classes, self.aspp_channels)
        self.fine_channels = int(fine_channels) if decoder else 0
        self.decoder = None
        if decoder:
            low_name, low_channels = LOW_LEVEL[backbone]
            self.net.backbone.return_layers[low_name] = "low"
            self.net.classifier = nn.Sequential(*list(self.net.classifier)[:-1])  # ASPP + 3x3 conv: the features
            fine = None
            if self.fine_channels:
                fine_name, fine_in = STRIDE_2[backbone]
                self.net.backbone.return_layers[fine_name] = "stride_2"
                fine = FineStage(self.decoder_channels, fine_in, self.fine_channels, num_classes)
            self.decoder = LowLevelDecoder(low_channels, num_classes, self.aspp_channels, self.decoder_channels, fine)
        self.register_buffer("mean", 255 * torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", 255 * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def load_imagenet_backbone(self, user_path: str | None = None) -> None:
        """ImageNet weights for the backbone through the registry (optional; offline: an error)."""
        entry = DEFAULT_ENTRIES[BACKBONES[self.backbone_name][1]]
        state = load_state_dict(entry, user_path=user_path)
        backbone = self.net.backbone
        if self.backbone_name == "mobilenet_v3_large":  # IntermediateLayerGetter over .features
            state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        else:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        load_into(backbone, state, entry.file)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - self.mean) / self.std
        if self.input_scale != 1.0:
            x = F.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False)
        if self.decoder is None:
            out = self.net(x)["out"]
        else:
            features = self.net.backbone(x)
            out = self.decoder(self.net.classifier(features["out"]), features["low"], features.get("stride_2"))
        if self.input_scale != 1.0 or out.shape[-2:] != rgb.shape[-2:]:
            out = F.interpolate(out, size=rgb.shape[2:], mode="bilinear", align_corners=False)
        return out


def save(path: Path, model: TorchvisionDeepLabV3, meta: dict) -> None:
    from pipeline.core.checkpoint_files import save_checkpoint, stored_meta

    save_checkpoint({"arch": "torchvision_deeplabv3", "backbone": model.backbone_name,
                     "num_classes": NUM_CLASSES, "input_scale": model.input_scale, "decoder": model.decoder is not None,
                     "aspp_channels": model.aspp_channels,
                     "decoder_channels": model.decoder_channels, "fine_channels": model.fine_channels,
                     "state_dict": model.state_dict(), "meta": stored_meta(meta)}, path)


def load(path: Path) -> TorchvisionDeepLabV3:
    try:
        checkpoint = load_checkpoint(path, map_location="cpu")
        model = TorchvisionDeepLabV3(checkpoint["backbone"], checkpoint["num_classes"], checkpoint["input_scale"],
                                     checkpoint.get("decoder", False), checkpoint.get("aspp_channels", 256),
                                     checkpoint.get("decoder_channels", 96), checkpoint.get("fine_channels", 0))
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        raise WeightsError(f"{path}: not a segmenter checkpoint written by pipeline.stages.train_segmenter ({err})") from None
    load_into(model, checkpoint["state_dict"], path)
    return model.eval()
