"""Evaluation metrics, one module per family (the evaluation stage combines them), and the
registry of every metric ``fid.json`` reports: its name, its direction, whether it is a Fréchet
distance or a KID between real and synthesized features and, for the FID family, the feature
network (a weights registry entry) and what it embeds (each frame, each 16-frame clip, each
whole video). The table, the plot and the paper tables show exactly these, in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    lower_is_better: bool
    extractor: str | None = None  # the FID family: weights registry entry of the feature network
    features: str | None = None  # 'frames', 'clips' (every 16-frame window) or 'videos' (whole videos)
    distance: str | None = None  # 'frechet' or 'kid': a distance between real and synthesized features

    @property
    def direction(self) -> str:
        return "lower" if self.lower_is_better else "higher"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("temporal_warping_error", lower_is_better=True),
    Metric("psnr", lower_is_better=False),
    Metric("ssim", lower_is_better=False),
    Metric("segmentation_miou", lower_is_better=False),
    # realism: the evaluator network's features (a network apart from the labels'), and no network
    Metric("image_fid_segmenter_standin", lower_is_better=True, distance="frechet"),
    Metric("image_kid_segmenter_standin", lower_is_better=True, distance="kid"),
    Metric("colour_distance_lab", lower_is_better=True),
    Metric("spectrum_distance", lower_is_better=True),
    # face and pose consistency with the networks that ship offline (dlib, MediaPipe)
    Metric("face_landmark_nme", lower_is_better=True),
    Metric("face_found_share", lower_is_better=False),
    Metric("face_embedding_fid", lower_is_better=True, distance="frechet"),
    Metric("face_embedding_kid", lower_is_better=True, distance="kid"),
    Metric("pose_pck", lower_is_better=False),
    Metric("person_found_share", lower_is_better=False),
    # the FID family, with its real weights only
    Metric("image_fid_inception", lower_is_better=True, extractor="inception_fid", features="frames", distance="frechet"),
    Metric("image_kid_inception", lower_is_better=True, extractor="inception_fid", features="frames", distance="kid"),
    Metric("fvd_i3d", lower_is_better=True, extractor="i3d_fvd", features="clips", distance="frechet"),
    Metric("kvd_i3d", lower_is_better=True, extractor="i3d_fvd", features="clips", distance="kid"),
    Metric("video_fid_i3d", lower_is_better=True, extractor="i3d_fvd", features="videos", distance="frechet"),
    Metric("video_kid_i3d", lower_is_better=True, extractor="i3d_fvd", features="videos", distance="kid"),
    Metric("video_fid_resnext101", lower_is_better=True, extractor="resnext101_kinetics", features="clips",
           distance="frechet"),
    Metric("video_kid_resnext101", lower_is_better=True, extractor="resnext101_kinetics", features="clips",
           distance="kid"),
)}
# the Fréchet distances computed with a feature network's real weights; each has its KID beside it
FEATURE_METRICS = {name: m for name, m in METRICS.items() if m.extractor and m.distance == "frechet"}
KID_OF = {name: next(k.name for k in METRICS.values() if k.distance == "kid" and k.extractor == m.extractor
                     and k.features == m.features) for name, m in FEATURE_METRICS.items()}
