"""Building blocks shared by the generator, the encoder and the discriminators (pix2pixHD / vid2vid
style): reflection-padded convolutions, residual blocks, strided down- and transposed up-sampling,
and the official N(0, 0.02) initialisation."""

from __future__ import annotations

import functools

from torch import nn


NORMS = ("instance", "batch", "sync_batch", "none")


def norm_layer(kind: str):
    """'instance' (pix2pixHD's default, no affine), 'batch', 'sync_batch' (DDP) or 'none'."""
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "sync_batch":
        return nn.SyncBatchNorm
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (instance, batch, sync_batch, none)")


def conv7(in_ch: int, out_ch: int, norm, activation: bool = True) -> nn.Sequential:
    """7x7 reflection-padded convolution (+ norm + ReLU): the first and last layers of G."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7)]
    if activation:
        layers += [norm(out_ch), nn.ReLU(True)]
    return nn.Sequential(*layers)


def down(in_ch: int, out_ch: int, norm) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), norm(out_ch), nn.ReLU(True))


def up(in_ch: int, out_ch: int, norm) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1),
                         norm(out_ch), nn.ReLU(True))


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels),
        )

    def forward(self, x):
        return x + self.body(x)


def encoder(in_ch: int, ngf: int, n_down: int, norm) -> nn.Sequential:
    """conv7 to ngf, then n_down stride-2 convolutions doubling the channels."""
    layers = [conv7(in_ch, ngf, norm)]
    for i in range(n_down):
        layers.append(down(ngf * 2**i, ngf * 2 ** (i + 1), norm))
    return nn.Sequential(*layers)


def decoder(ngf: int, n_up: int, norm) -> nn.Sequential:
    """n_up transposed convolutions halving the channels, down to ngf."""
    return nn.Sequential(*[up(ngf * 2 ** (i + 1), ngf * 2**i, norm) for i in reversed(range(n_up))])


def res_blocks(channels: int, count: int, norm) -> nn.Sequential:
    return nn.Sequential(*[ResnetBlock(channels, norm) for _ in range(count)])


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The official initialisation: convolution weights from N(0, std), batch-norm scales from
    N(1, std) with zero shifts (pix2pixHD / vid2vid ``weights_init``)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
