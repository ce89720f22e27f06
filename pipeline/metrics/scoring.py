"""Scoring synthesized videos against the real ones (paper section 4, evaluation): what the evaluation
stages share (pipeline/stages/evaluate.py: fid.json and the ablations; pipeline/stages/evaluate_prediction.py:
future prediction). The real val clips from the cache and their fingerprint, the dataset's segmenter and
its reference on the real clips, the per-pixel metrics (temporal warping error, PSNR, SSIM), segmentation
consistency and its stand-in FID, the FID family's Frechet distances; every value with its bootstrap
spread over clips (pipeline/metrics/spread.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.cache_format import CacheShard
from pipeline.core.cityscapes_labels import NUM_TRAIN_IDS
from pipeline.core.code_version import code_version
from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb
from pipeline.core.synthesized import method_frame_files
from pipeline.metrics import FEATURE_METRICS
from pipeline.metrics.image import psnr, ssim
from pipeline.metrics.spread import RESAMPLES_FRECHET, bootstrap
from pipeline.metrics.temporal import warping_error

log = logging.getLogger("pipeline.metrics.scoring")
UNAVAILABLE: dict[str, str] = {}
NO_SEGMENTER = "needs a segmenter: labels mode 'train' (results/<ds>/segmenter/model.pt) or 'pretrained' with its weights"


def dataset_segmenter(ds):
    """(model, description, sha256) of the dataset's segmenter, or (None, reason, None)."""
    from pipeline.core.weights import WeightsError
    from pipeline.segmentation import loaders

    if ds.settings.task != "street":
        return None, f"segmentation consistency is a street-scene metric (task {ds.settings.task!r})", None
    if ds.settings.labels.mode not in loaders.LOADERS:
        return None, NO_SEGMENTER, None
    try:  # a missing trained segmenter or pretrained checkpoint: the reason names the file and its rule
        segmenter = loaders.load(ds)
    except (InputError, WeightsError) as err:
        return None, str(err), None
    return segmenter.model, segmenter.description, segmenter.sha256


def frechet_entry(real_parts: list[np.ndarray], fake_parts: list[np.ndarray]) -> dict:
    """The Fréchet distance between the real and the synthesized clips' features (one array per
    clip), with its bootstrap spread over clips (both sides resampled alike)."""
    from pipeline.metrics.frechet import features_distance

    def distance(pairs) -> float:
        return features_distance(np.concatenate([r for r, _ in pairs]), np.concatenate([f for _, f in pairs]))

    pairs = list(zip(real_parts, fake_parts))
    return {"value": distance(pairs), "features": int(sum(len(f) for f in fake_parts)),
            "real_features": int(sum(len(r) for r in real_parts)),
            "spread": bootstrap(pairs, distance, RESAMPLES_FRECHET)}


def feature_metrics(ds, real: dict, fakes: dict[str, list[np.ndarray]], split: str, fingerprint: str) -> dict:
    """{method: {metric: entry}} for the FID family; unavailable (with the reason) without weights."""
    from pipeline.core.weights import WeightsError
    from pipeline.metrics import extractors

    videos = [f for f, _, _ in real.values()]
    results = {method: {} for method in fakes}
    for metric, entry in FEATURE_METRICS.items():
        name, kind = entry.extractor, entry.features
        try:
            model, sha = extractors.load(name)
        except WeightsError as err:
            for method in fakes:
                results[method][metric] = {"value": None, "available": False, "extractor": name, "reason": str(err)}
            continue

        def features(vids) -> list[np.ndarray]:  # one array per clip
            if kind == "frames":
                return [extractors.frame_features(model, [v]) for v in vids]
            if kind == "clips":
                return [extractors.clip_features(model, [v]) for v in vids]
            shortest = min(len(v) for v in vids)
            return [extractors.clip_features(model, [v], clip=shortest, stride=shortest) for v in vids]  # whole videos

        real_parts = extractors.cached_real_features(ds.results / "fid_stats", f"{name}-{kind}", split, sha,
                                                     fingerprint, lambda: features(videos))
        for method, fake_videos in fakes.items():
            results[method][metric] = {**frechet_entry(real_parts, features(fake_videos)), "extractor": name,
                                       "weights_sha256": sha}
    return results


def labels_of(ds, seq: str, count: int) -> np.ndarray:
    from pipeline.core.images import read_map
    from pipeline.segmentation.predict import LABEL_TO_TRAIN

    folder = ds.results / "labels" / seq
    files = sorted(folder.glob("*.png"))[:count]
    if len(files) != count:
        raise InputError(folder, f"{len(files)} label maps, expected {count}")
    return LABEL_TO_TRAIN[np.stack([read_map(f, np.uint8) for f in files])]


def segmenter_features(model, videos: list[np.ndarray]) -> np.ndarray:
    """Pooled backbone features (one vector per frame) of the dataset's trained segmenter: the
    offline stand-in for Inception features (named so in fid.json)."""
    import torch

    from pipeline.core.devices import pick_device

    device = pick_device()
    model = model.to(device).eval()
    out = []
    with torch.inference_mode():
        for frames in videos:
            for start in range(0, len(frames), 16):
                rgb = torch.from_numpy(frames[start:start + 16]).to(device).permute(0, 3, 1, 2).float()
                x = (rgb - model.mean) / model.std
                out.append(model.net.backbone(x)["out"].mean(dim=(2, 3)).float().cpu().numpy())
    return np.concatenate(out)


def frame_confusions(ds, model, frames: list[np.ndarray], truth: np.ndarray) -> list[np.ndarray]:
    """The confusion matrix of the segmenter on each of ``frames`` against trainIds ``truth``, run as
    the labels stage runs it (its ``scales`` / ``flip``), 8 frames a batch."""
    from pipeline.core.devices import pick_device
    from pipeline.segmentation import predict

    device = pick_device()
    inference = predict.inference_settings(ds.settings.labels)
    matrices = []
    for start in range(0, len(frames), 8):
        pred = predict.predict_train_ids(model.to(device), frames[start:start + 8], device, **inference)
        matrices += [predict.confusion(p, t) for p, t in zip(pred, truth[start:start + 8])]
    return matrices


def segmentation_confusion(ds, model, frames: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    """The confusion matrix of the segmenter over all of ``frames`` (:func:`frame_confusions`)."""
    return sum(frame_confusions(ds, model, frames, truth), np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), np.int64))


def real_sequences(ds, split: str):
    """({seq: (frames (T,H,W,3) uint8, flow_backward (T-1,2,H,W), confidence_backward (T-1,H,W))},
    the fingerprint of these sequences in the cache: their names, sizes and source stages)."""
    shards = sorted((ds.results / "cache").glob("*.safetensors"))
    if not shards:
        raise InputError(ds.results / "cache", "no cache shards: run the cache stage first")
    found, described = {}, []
    for path in shards:
        shard = CacheShard(path)
        for seq in shard.sequences(split):
            name = seq["name"]
            described.append(seq)
            found[name] = (shard.tensor(name, "frames"), shard.tensor(name, "flow_backward").astype(np.float32),
                           shard.tensor(name, "confidence_backward").astype(np.float32) / 255.0)
    described = sorted(described, key=lambda seq: seq["name"])
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    return found, fingerprint


def method_frames(ds, method: str, seq: str, real_frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) synthesized frames of one sequence, checked against the real ones' count and size."""
    folder = ds.results / "synth" / method / seq
    fake = np.stack([read_rgb(f) for f in method_frame_files(ds, method, seq, len(real_frames))])
    if fake.shape != real_frames.shape:
        raise InputError(folder, f"frames are {fake.shape[2]}x{fake.shape[1]}, the real ones "
                                 f"{real_frames.shape[2]}x{real_frames.shape[1]}")
    return fake


def mean_entry(per_clip: list[np.ndarray]) -> tuple[float, dict]:
    """The mean over all frames of per-clip frame values, and its bootstrap spread over clips."""
    def mean(parts) -> float:
        return float(np.mean(np.concatenate(parts)))

    return mean(per_clip), bootstrap(per_clip, mean)


@dataclass
class SegmenterReference:
    """The scoring segmenter and what it gives on the real clips: the labels it is scored against,
    the real clips' mIoU and (for the demo's trained segmenter) their stand-in FID features."""

    model: Any
    name: str
    sha256: str | None
    truth: dict[str, np.ndarray]
    real_miou: float
    real_features: list[np.ndarray] | None  # None: no stand-in FID (not the trained segmenter)


def segmenter_reference(ds, real: dict, split: str, fingerprint: str) -> SegmenterReference | str:
    """The segmenter's reference on the real clips (cached by the cache's fingerprint), or the
    reason there is no segmenter to score with."""
    from pipeline.metrics import extractors
    from pipeline.segmentation.predict import mean_iou

    segmenter, name, sha = dataset_segmenter(ds)
    if segmenter is None:
        return name
    truth = {seq: labels_of(ds, seq, len(f)) for seq, (f, _, _) in real.items()}
    stand_in = ds.settings.labels.mode == "train"  # the trained torchvision DeepLabV3: its features

    def real_parts() -> list[np.ndarray]:  # per clip: its confusion matrix, then its stand-in features
        parts = [segmentation_confusion(ds, segmenter, list(f), truth[seq]) for seq, (f, _, _) in real.items()]
        return parts + ([segmenter_features(segmenter, [f]) for f, _, _ in real.values()] if stand_in else [])

    parts = extractors.cached_real_features(ds.results / "fid_stats", "segmenter", split, sha, fingerprint, real_parts)
    real_miou = mean_iou(sum(parts[:len(real)]))
    log.info("the segmenter on the real clips: mIoU %.3f", real_miou)
    return SegmenterReference(segmenter, name, sha, truth, real_miou, parts[len(real):] if stand_in else None)


def pixel_metrics(fakes: list[np.ndarray], real: dict, floor: float, counts: dict) -> dict:
    """Temporal warping error, PSNR and SSIM of one method's clips, each with its spread."""
    errors, psnrs, ssims = [], [], []
    for fake, (real_frames, back, conf) in zip(fakes, real.values()):
        errors.append(np.array([warping_error(list(fake), back, conf)]))
        psnrs.append(np.array([psnr(f, r) for f, r in zip(fake, real_frames)]))
        ssims.append(np.array([ssim(f, r) for f, r in zip(fake, real_frames)]))
    metrics = {}
    for name, per_clip, extra in (
            ("temporal_warping_error", errors, {"extractor": "source backward flow", "real_videos_value": float(floor)}),
            ("psnr", psnrs, {"extractor": None}), ("ssim", ssims, {"extractor": None})):
        value, spread = mean_entry(per_clip)
        metrics[name] = {"value": value, **extra, "weights_sha256": None, "spread": spread, **counts}
    return metrics


def segmenter_metrics(ref: SegmenterReference, ds, fakes: list[np.ndarray], real: dict, counts: dict,
                      matrices: list[np.ndarray] | None = None) -> dict:
    """Segmentation consistency of one method's clips and, with the trained segmenter, its stand-in
    FID; ``matrices``: the clips' confusion matrices when the caller has them already."""
    from pipeline.segmentation.predict import mean_iou

    if matrices is None:
        matrices = [segmentation_confusion(ds, ref.model, list(fake), ref.truth[seq]) for fake, seq in zip(fakes, real)]
    metrics = {"segmentation_miou": {
        "value": mean_iou(sum(matrices)), "extractor": ref.name, "weights_sha256": ref.sha256,
        "real_videos_value": ref.real_miou, "against": "the labels stage's maps (the generator's input)",
        "spread": bootstrap(matrices, lambda parts: mean_iou(sum(parts))), **counts}}
    if ref.real_features is not None:
        fake_features = [segmenter_features(ref.model, [fake]) for fake in fakes]
        metrics["image_fid_segmenter_standin"] = {
            **frechet_entry(ref.real_features, fake_features),
            "extractor": f"STAND-IN, not Inception: pooled backbone features of {ref.name}",
            "weights_sha256": ref.sha256, **counts}
    return metrics


def run_metadata(ds, stage: str) -> dict:
    """What a scores file records of how it was made: dataset, config hash, the stage's code version,
    git commit, card."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        import torch

        card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})"
    except ImportError:
        card = platform.machine()
    config_hash = hashlib.sha256(json.dumps(ds.cfg, sort_keys=True).encode()).hexdigest()[:16]
    return {"dataset": ds.name, "config_hash": config_hash, "code_version": code_version(stage),
            "git_commit": commit, "card": card}
