"""Generator inputs built on the device from cached maps (paper section 4: semantic maps as
one-hot vectors plus an instance boundary map, 35 channels for Cityscapes' 34 labelIds + edges).
The one-hot map is never cached: it is made here from the uint8 labels, on the GPU when there is one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot_labels(labels: torch.Tensor, num_classes: int = 34, dtype=torch.float32) -> torch.Tensor:
    """(..., H, W) integer labels -> (..., C, H, W) one-hot."""
    return F.one_hot(labels.long(), num_classes).movedim(-1, -3).to(dtype)


def instance_edges(instances: torch.Tensor) -> torch.Tensor:
    """(..., H, W) instance ids -> (..., 1, H, W) float map, 1 where a pixel's 4-neighbour differs."""
    edges = torch.zeros_like(instances, dtype=torch.bool)
    horizontal = instances[..., :, 1:] != instances[..., :, :-1]
    vertical = instances[..., 1:, :] != instances[..., :-1, :]
    edges[..., :, 1:] |= horizontal
    edges[..., :, :-1] |= horizontal
    edges[..., 1:, :] |= vertical
    edges[..., :-1, :] |= vertical
    return edges.unsqueeze(-3).float()
