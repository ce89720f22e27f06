"""Evaluation metrics, one module per family (the evaluation stage combines them), and the
registry of every metric ``fid.json`` reports: its name, its direction and, for the FID family,
the feature network (a weights registry entry) and what it embeds (each frame, each 16-frame
clip, each whole video). The table, the plot and the paper tables show exactly these, in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    lower_is_better: bool
    extractor: str | None = None  # the FID family: weights registry entry of the feature network
    features: str | None = None  # 'frames', 'clips' (every 16-frame window) or 'videos' (whole videos)

    @property
    def direction(self) -> str:
        return "lower" if self.lower_is_better else "higher"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("temporal_warping_error", lower_is_better=True),
    Metric("psnr", lower_is_better=False),
    Metric("ssim", lower_is_better=False),
    Metric("segmentation_miou", lower_is_better=False),
    Metric("image_fid_segmenter_standin", lower_is_better=True),
    Metric("image_fid_inception", lower_is_better=True, extractor="inception_fid", features="frames"),
    Metric("fvd_i3d", lower_is_better=True, extractor="i3d_fvd", features="clips"),
    Metric("video_fid_i3d", lower_is_better=True, extractor="i3d_fvd", features="videos"),
    Metric("video_fid_resnext101", lower_is_better=True, extractor="resnext101_kinetics", features="clips"),
)}
FEATURE_METRICS = {name: m for name, m in METRICS.items() if m.extractor}
