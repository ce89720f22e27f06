"""Where a network runs: the device choice every stage and the trainer share, and the training
precision that device runs fast.

``pick_device('auto')`` is the GPU when there is one, else the CPU. ``resolve_precision('auto', d)``
is bf16 where the device computes in bf16 natively (a CUDA card with bf16, a CPU with AVX512-BF16 or
AMX) and fp32 elsewhere: on an AVX2-only CPU a bf16-autocast convolution is emulated and ran 57x
slower than fp32 (2x64x64x128 3x3 convolutions, AMD EPYC without AVX-512), so bf16 asked for there
is run as asked with a warning. ``autocast(precision, d)`` is the context a training step runs in.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

log = logging.getLogger("pipeline.core.devices")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(device: str | None = "auto") -> torch.device:
    """'auto' or None: cuda when available, else cpu; otherwise the named device ('cpu', 'cuda:1')."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware rather than emulating it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run trains in on ``device``: 'auto' becomes bf16 or fp32 (see module doc)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        log.warning("train.precision bf16 on %s, which has no native bf16: autocast emulates it and can run "
                    "tens of times slower than fp32 (train.precision: auto picks fp32 here)", device)
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved ``precision`` on ``device`` (fp32: none)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
