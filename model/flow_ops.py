"""Flow warping on the device: the warp operator w~ of the paper (Eq. 4 and the flow loss, Eq. 8).

``warp(x, flow)`` samples x at p + flow(p) (bilinear or bicubic, border padding): with the forward flow
t-1 -> ... convention of the cache this predicts frame t-1's content at frame t's pixels when flow
is the backward flow; the generator learns its own flow, so only the sampling convention matters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_GRIDS: dict[tuple, torch.Tensor] = {}


def _base_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    key = (h, w, device, dtype)
    if key not in _GRIDS:
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                                torch.arange(w, device=device, dtype=dtype), indexing="ij")
        _GRIDS[key] = torch.stack([xs, ys])  # (2, H, W) pixel coordinates
    return _GRIDS[key]


WARP_MODES = ("bilinear", "bicubic")


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at p + flow(p); flow (N, 2, H, W) in pixels (x, y).
    ``mode`` 'bilinear' (the official code's resample2d) low-passes at every sub-pixel shift;
    'bicubic' keeps more detail where a frame is warped again and again (Eq. 4 over a video)."""
    n, _, h, w = flow.shape
    coords = _base_grid(h, w, flow.device, flow.dtype) + flow
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=flow.device, dtype=flow.dtype)
    grid = (coords * scale.view(1, 2, 1, 1) - 1.0).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid.to(image.dtype), mode=mode, padding_mode="border", align_corners=True)


def compose(flows: list[torch.Tensor]) -> torch.Tensor:
    """Chain flows f1 (t->t+1), f2 (t+1->t+2), ... into t->t+k: f = f1 + f2(p + f1) + ..."""
    total = flows[0]
    for flow in flows[1:]:
        total = total + warp(flow, total)
    return total
