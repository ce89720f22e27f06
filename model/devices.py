"""Where a network runs: the device choice every stage and the trainer share.

``pick_device('auto')`` is the GPU when there is one, else the CPU.
"""

from __future__ import annotations

import torch


def pick_device(device: str | None = "auto") -> torch.device:
    """'auto' or None: cuda when available, else cpu; otherwise the named device ('cpu', 'cuda:1')."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
