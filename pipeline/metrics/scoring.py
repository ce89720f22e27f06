"""Scoring synthesized videos against the real ones (paper section 4, evaluation): what the evaluation
stages share (pipeline/stages/evaluate.py: fid.json and the ablations; pipeline/stages/evaluate_prediction.py:
future prediction). The real val clips from the cache and their fingerprint, the dataset's segmenter and
its reference on the real clips, the per-pixel metrics (temporal warping error, PSNR, SSIM), segmentation
consistency, the realism statistics (the evaluator network's stand-in FID and KID, the network-free
colour and spectrum distances: pipeline/metrics/kid.py, appearance.py), the FID family's Fréchet
distances and KIDs; every value with its bootstrap spread over clips (pipeline/metrics/spread.py).

Each family returns :class:`Scored` records: the entry fid.json shows, and the per-clip parts and
the statistic that makes the value from them, so that the evaluation can compare every method
with its baseline clip by clip (``spread.paired_difference``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.cache_format import CacheShard
from pipeline.core.cityscapes_labels import NUM_TRAIN_IDS
from pipeline.core.code_version import code_version
from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb
from pipeline.core.synthesized import method_frame_files
from pipeline.metrics import FEATURE_METRICS, KID_OF
from pipeline.metrics.appearance import colour_distance, spectrum_distance
from pipeline.metrics.image import psnr, ssim
from pipeline.metrics.kid import kid_of_parts
from pipeline.metrics.spread import RESAMPLES_FRECHET, bootstrap, paired_difference
from pipeline.metrics.temporal import warping_error

log = logging.getLogger("pipeline.metrics.scoring")
UNAVAILABLE: dict[str, str] = {}
RESAMPLES_KID = 200  # each resample computes three kernel matrices over every frame's features


@dataclass
class Scored:
    """One metric of one method: the entry fid.json records, and (where it is computed from clips)
    the per-clip parts and the statistic that makes the value from a list of them."""

    entry: dict
    parts: list | None = None
    statistic: Callable[[list], float] | None = None
    resamples: int = 1000

    def compared_with(self, baseline: "Scored") -> dict | None:
        """The paired bootstrap of this value minus the baseline's over the same clips."""
        if self.parts is None or baseline.parts is None:
            return None
        return paired_difference(self.parts, baseline.parts, self.statistic, self.resamples)


def entries(scores: dict[str, Scored]) -> dict[str, dict]:
    return {name: scored.entry for name, scored in scores.items()}


def mean_of(parts: list) -> float:
    """The mean over every frame of per-clip frame values."""
    return float(np.mean(np.concatenate(parts)))


def frechet_of(parts: list) -> float:
    """The Fréchet distance of per-clip (real features, synthesized features) pairs."""
    from pipeline.metrics.frechet import features_distance

    return features_distance(np.concatenate([r for r, _ in parts]), np.concatenate([f for _, f in parts]))
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


def distance_scores(real_parts: list[np.ndarray], fake_parts: list[np.ndarray], fid: str, kid: str,
                    extra: dict) -> dict[str, Scored]:
    """The Fréchet distance and the KID between the real and the synthesized clips' features (one
    array per clip), each with its bootstrap spread over clips (both sides resampled alike)."""
    pairs = list(zip(real_parts, fake_parts))
    counts = {"features": int(sum(len(f) for f in fake_parts)), "real_features": int(sum(len(r) for r in real_parts))}
    return {fid: Scored({"value": frechet_of(pairs), **counts, **extra,
                         "spread": bootstrap(pairs, frechet_of, RESAMPLES_FRECHET)}, pairs, frechet_of, RESAMPLES_FRECHET),
            kid: Scored({"value": kid_of_parts(pairs), **counts, **extra,
                         "spread": bootstrap(pairs, kid_of_parts, RESAMPLES_KID)}, pairs, kid_of_parts, RESAMPLES_KID)}


def feature_scores(ds, real: dict, fakes: dict[str, list[np.ndarray]], split: str, fingerprint: str
                   ) -> dict[str, dict[str, Scored]]:
    """{method: {metric: Scored}} for the FID family (each Fréchet distance with its KID on the
    same features); unavailable (with the reason) without weights."""
    from pipeline.core.weights import WeightsError
    from pipeline.metrics import extractors

    videos = [f for f, _, _ in real.values()]
    results = {method: {} for method in fakes}
    for metric, entry in FEATURE_METRICS.items():
        name, kind, kid_name = entry.extractor, entry.features, KID_OF[metric]
        try:
            model, sha = extractors.load(name)
        except WeightsError as err:
            for method in fakes:
                for shown in (metric, kid_name):
                    results[method][shown] = Scored({"value": None, "available": False, "extractor": name,
                                                     "reason": str(err)})
            continue

        def features(vids) -> list[np.ndarray]:  # one array per clip
            if kind == "frames":
                return [extractors.frame_features(model, [v]) for v in vids]
            if kind == "clips":
                return [extractors.clip_features(model, [v]) for v in vids]
            shortest = min(len(v) for v in vids)
            return [extractors.clip_features(model, [v], clip=shortest, stride=shortest) for v in vids]  # whole videos

        real_parts = extractors.cached_real_features(ds.results / "fid_stats", f"{name}-{kind}-{len(videos[0])}f",
                                                     split, sha, fingerprint, lambda: features(videos))
        for method, fake_videos in fakes.items():
            results[method].update(distance_scores(real_parts, features(fake_videos), metric, kid_name,
                                                   {"extractor": name, "weights_sha256": sha}))
    return results


def labels_of(ds, seq: str, count: int) -> np.ndarray:
    from pipeline.core.images import read_map
    from pipeline.segmentation.predict import LABEL_TO_TRAIN

    folder = ds.results / "labels" / seq
    files = sorted(folder.glob("*.png"))[:count]
    if len(files) != count:
        raise InputError(folder, f"{len(files)} label maps, expected {count}")
    return LABEL_TO_TRAIN[np.stack([read_map(f, np.uint8) for f in files])]


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
    return mean_of(per_clip), bootstrap(per_clip, mean_of)


def defined_mean_of(parts: list) -> float:
    """The mean of per-clip values that are defined (nan: the clip has none, e.g. no face found)."""
    values = np.concatenate(parts)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def mean_scored(per_clip: list[np.ndarray], extra: dict, statistic: Callable[[list], float] = mean_of) -> Scored:
    """A mean over all frames of per-clip values, as fid.json shows it, comparable clip by clip."""
    value = statistic(per_clip)
    if np.isnan(value):
        return Scored({"value": None, "available": False, **extra, "reason": "no clip has a defined value"})
    return Scored({"value": value, **extra, "spread": bootstrap(per_clip, statistic)}, per_clip, statistic)


@dataclass
class SegmenterReference:
    """The scoring segmenter and what it gives on the real clips: the labels it is scored against
    and the real clips' mIoU."""

    model: Any
    name: str
    sha256: str | None
    truth: dict[str, np.ndarray]
    real_miou: float


def segmenter_reference(ds, real: dict, split: str, fingerprint: str, skip: int = 0) -> SegmenterReference | str:
    """The segmenter's reference on the real clips from frame ``skip`` on (cached by the cache's
    fingerprint), or the reason there is no segmenter to score with."""
    from pipeline.metrics import extractors
    from pipeline.segmentation.predict import mean_iou

    segmenter, name, sha = dataset_segmenter(ds)
    if segmenter is None:
        return name
    truth = {seq: labels_of(ds, seq, len(f) + skip)[skip:] for seq, (f, _, _) in real.items()}
    parts = extractors.cached_real_features(
        ds.results / "fid_stats", f"segmenter-from{skip}", split, sha, fingerprint,
        lambda: [segmentation_confusion(ds, segmenter, list(f), truth[seq]) for seq, (f, _, _) in real.items()])
    real_miou = mean_iou(sum(parts))
    log.info("the segmenter on the real clips: mIoU %.3f", real_miou)
    return SegmenterReference(segmenter, name, sha, truth, real_miou)


def pixel_scores(fakes: list[np.ndarray], real: dict, floor: float, counts: dict) -> dict[str, Scored]:
    """Temporal warping error, PSNR and SSIM of one method's clips, each with its spread."""
    errors, psnrs, ssims = [], [], []
    for fake, (real_frames, back, conf) in zip(fakes, real.values()):
        errors.append(np.array([warping_error(list(fake), back, conf)]))
        psnrs.append(np.array([psnr(f, r) for f, r in zip(fake, real_frames)]))
        ssims.append(np.array([ssim(f, r) for f, r in zip(fake, real_frames)]))
    plain = {"weights_sha256": None, **counts}
    return {"temporal_warping_error": mean_scored(errors, {"extractor": "source backward flow",
                                                           "real_videos_value": float(floor), **plain}),
            "psnr": mean_scored(psnrs, {"extractor": None, **plain}),
            "ssim": mean_scored(ssims, {"extractor": None, **plain})}


def pixel_metrics(fakes: list[np.ndarray], real: dict, floor: float, counts: dict) -> dict:
    """:func:`pixel_scores`' entries."""
    return entries(pixel_scores(fakes, real, floor, counts))


def segmenter_scores(ref: SegmenterReference, ds, fakes: list[np.ndarray], real: dict, counts: dict,
                     matrices: list[np.ndarray] | None = None) -> dict[str, Scored]:
    """Segmentation consistency of one method's clips (mIoU against the input labels); ``matrices``:
    the clips' confusion matrices when the caller has them already."""
    from pipeline.segmentation.predict import mean_iou

    if matrices is None:
        matrices = [segmentation_confusion(ds, ref.model, list(fake), ref.truth[seq]) for fake, seq in zip(fakes, real)]

    def miou(parts) -> float:
        return mean_iou(sum(parts))

    entry = {"value": miou(matrices), "extractor": ref.name, "weights_sha256": ref.sha256,
             "real_videos_value": ref.real_miou, "against": "the labels stage's maps (the generator's input)",
             "spread": bootstrap(matrices, miou), **counts}
    return {"segmentation_miou": Scored(entry, matrices, miou)}


def segmenter_metrics(ref: SegmenterReference, ds, fakes: list[np.ndarray], real: dict, counts: dict,
                      matrices: list[np.ndarray] | None = None) -> dict:
    """:func:`segmenter_scores`' entries."""
    return entries(segmenter_scores(ref, ds, fakes, real, counts, matrices))


def layer_statistics(model, videos: list[np.ndarray]) -> np.ndarray:
    """Per frame, the spatial mean and standard deviation of every channel of each of the
    DeepLabV3 backbone's returned layers (stride 2, stride 4 and its last stage): the colour and
    texture statistics of the early layers beside the semantic ones of the last (a style
    representation, Gatys et al. 2016, at the first two moments). (frames, 2 x channels) float64,
    a block of columns per layer (:func:`layer_blocks`)."""
    import torch

    from pipeline.core.devices import pick_device

    device = pick_device()
    model = model.to(device).eval()
    out = []
    with torch.inference_mode():
        for frames in videos:
            for start in range(0, len(frames), 16):
                rgb = torch.from_numpy(frames[start:start + 16]).to(device).permute(0, 3, 1, 2).float()
                layers = model.net.backbone((rgb - model.mean) / model.std)
                out.append(torch.cat([torch.cat([v.mean(dim=(2, 3)), v.std(dim=(2, 3))], 1)
                                      for _, v in sorted(layers.items())], 1).double().cpu().numpy())
    return np.concatenate(out)


def layer_blocks(model) -> list[slice]:
    """The columns of each layer's statistics in :func:`layer_statistics`."""
    import torch

    with torch.inference_mode():
        layers = model.net.backbone(torch.zeros(1, 3, 64, 64))
    blocks, start = [], 0
    for _, value in sorted(layers.items()):
        blocks.append(slice(start, start + 2 * value.shape[1]))
        start += 2 * value.shape[1]
    return blocks


@dataclass
class Evaluator:
    """The realism evaluator: a trained DeepLabV3 apart from the one that made the input labels
    (evaluate.evaluator), its layer statistics of each real clip, centred on the real frames' mean
    and divided by one scale per layer: the root mean square of the layer's statistics on the real
    frames, so that no layer's units dominate the distance (the Fréchet distance does not change
    with the centring; KID's polynomial kernel would otherwise measure the mean's norm). The scale
    is a magnitude, not a spread, so that a few similar real frames do not blow the distances up.
    A layer whose statistics hardly vary over the real frames (a spread below 1/1000 of their
    magnitude: a stage that did not train) is left out."""

    model: Any
    name: str
    sha256: str
    real_features: list[np.ndarray]
    blocks: list[tuple[slice, float]]
    centre: np.ndarray

    def standardised(self, features: np.ndarray) -> np.ndarray:
        centred = features - self.centre
        return np.concatenate([centred[:, block] / scale for block, scale in self.blocks], 1)


def load_evaluator(path, real: dict, ds, split: str, fingerprint: str, frames: str) -> Evaluator:
    """The evaluator checkpoint at ``path`` and its statistics of the real clips (cached under a
    name that says which ``frames`` of the clips they are, e.g. 'from2')."""
    from pipeline.core.weights import sha256_of
    from pipeline.metrics import extractors
    from pipeline.segmentation import trainable

    model, sha = trainable.load(path), sha256_of(path)
    parts = extractors.cached_real_features(ds.results / "fid_stats", f"evaluator-layers-{frames}", split, sha,
                                            fingerprint, lambda: [layer_statistics(model, [f]) for f, _, _ in real.values()])
    real_frames = np.concatenate(parts)
    spread = real_frames.std(0)
    blocks = [(block, float(np.sqrt(np.mean(real_frames[:, block] ** 2)))) for block in layer_blocks(model)]
    kept = [(block, scale) for block, scale in blocks if np.sqrt(np.mean(spread[block] ** 2)) > 1e-3 * scale > 0]
    if not kept:
        raise InputError(path, "the evaluator's layers do not vary over the real frames: train it longer")
    evaluator = Evaluator(model, f"DeepLabV3 {model.backbone_name} trained apart ({path})", sha, [], kept,
                          real_frames.mean(0))
    evaluator.real_features = [evaluator.standardised(p) for p in parts]
    return evaluator


def evaluator_scores(evaluator: Evaluator, fakes: list[np.ndarray], counts: dict) -> dict[str, Scored]:
    """The stand-in FID and KID of one method's clips over the evaluator's standardised layer statistics."""
    extra = {"extractor": f"STAND-IN, not Inception: per-channel mean and std of the backbone layers of "
                          f"{evaluator.name}, each layer scaled by its magnitude on the real frames ({len(evaluator.blocks)} layers, "
                          f"{evaluator.real_features[0].shape[1]} dims)",
             "weights_sha256": evaluator.sha256, **counts}
    fake_features = [evaluator.standardised(layer_statistics(evaluator.model, [fake])) for fake in fakes]
    return distance_scores(evaluator.real_features, fake_features, "image_fid_segmenter_standin",
                           "image_kid_segmenter_standin", extra)


def unavailable(names: tuple[str, ...], reason: str, **extra) -> dict[str, Scored]:
    return {name: Scored({"value": None, "available": False, "reason": reason, **extra}) for name in names}


FACE_METRICS = ("face_landmark_nme", "face_found_share", "face_embedding_fid", "face_embedding_kid")
POSE_METRICS = ("pose_pck", "person_found_share")


def face_scores(ds, real: dict, fakes: dict[str, list[np.ndarray]], skip: int, counts: dict) -> dict[str, dict]:
    """{method: {metric: Scored}}: dlib's landmarks on the synthesized faces against the input
    landmarks (NME, inter-ocular), the share of frames with a face, and the Fréchet distance and
    KID of dlib's 128-d identity embeddings of the real and the synthesized faces
    (pipeline/metrics/face_consistency.py); the real clips' own NME and share are the floor."""
    from pipeline.metrics import face_consistency

    reason = face_consistency.unavailable_reason()
    if reason:
        return {m: unavailable(FACE_METRICS, reason, command=face_consistency.INSTALL_COMMAND) for m in fakes}
    targets = {seq: face_consistency.sequence_landmarks(ds.results, seq).points[skip:] for seq in real}
    measured_real = [face_consistency.face_measurements(f, targets[seq]) for seq, (f, _, _) in real.items()]
    floor = {"face_landmark_nme": defined_mean_of([m["nme"] for m in measured_real]),
             "face_found_share": mean_of([m["found"].astype(float) for m in measured_real])}
    network = measured_real[0]["network"]
    results = {}
    for method, clips in fakes.items():
        measured = [face_consistency.face_measurements(fake, targets[seq]) for fake, seq in zip(clips, real)]
        extra = {"extractor": network, **counts}
        found = {"face_landmark_nme": mean_scored([m["nme"] for m in measured],
                                                  {**extra, "real_videos_value": floor["face_landmark_nme"]},
                                                  defined_mean_of),
                 "face_found_share": mean_scored([m["found"].astype(float) for m in measured],
                                                 {**extra, "real_videos_value": floor["face_found_share"]})}
        if all(len(m["embeddings"]) >= 2 for m in measured):
            found.update(distance_scores([m["embeddings"] for m in measured_real], [m["embeddings"] for m in measured],
                                         "face_embedding_fid", "face_embedding_kid",
                                         {"extractor": f"dlib face recognition ResNet (128-d), {network}"}))
        else:
            found.update(unavailable(("face_embedding_fid", "face_embedding_kid"),
                                     "dlib found fewer than 2 faces in a clip of the synthesized frames"))
        results[method] = found
    return results


def pose_scores(ds, real: dict, fakes: dict[str, list[np.ndarray]], skip: int, counts: dict,
                mediapipe: str | None = None) -> dict[str, dict]:
    """{method: {metric: Scored}}: MediaPipe's keypoints on the synthesized frames against the input
    keypoints, PCK at 0.1 of the person's height, and the share of frames with a person
    (pipeline/metrics/pose_consistency.py); the real clips' own PCK is the floor."""
    from pipeline.metrics import pose_consistency

    reason = pose_consistency.unavailable_reason(mediapipe)
    if reason:
        return {m: unavailable(POSE_METRICS, reason, command=pose_consistency.SETUP_COMMAND) for m in fakes}
    targets = {seq: pose_consistency.sequence_keypoints(ds.results, seq).body[skip:] for seq in real}
    measured_real = [pose_consistency.pose_measurements(f, targets[seq], mediapipe) for seq, (f, _, _) in real.items()]
    floor = {"pose_pck": defined_mean_of([m["pck"] for m in measured_real]),
             "person_found_share": mean_of([m["found"].astype(float) for m in measured_real])}
    results = {}
    for method, clips in fakes.items():
        measured = [pose_consistency.pose_measurements(fake, targets[seq], mediapipe) for fake, seq in zip(clips, real)]
        extra = {"extractor": measured_real[0]["network"], "alpha": pose_consistency.ALPHA, **counts}
        results[method] = {
            "pose_pck": mean_scored([m["pck"] for m in measured], {**extra, "real_videos_value": floor["pose_pck"]},
                                    defined_mean_of),
            "person_found_share": mean_scored([m["found"].astype(float) for m in measured],
                                              {**extra, "real_videos_value": floor["person_found_share"]})}
    return results


def appearance_scores(fakes: list[np.ndarray], real: dict, labels: dict[str, np.ndarray] | None,
                      counts: dict) -> dict[str, Scored]:
    """The network-free statistics of one method's clips, each clip against its real clip: the
    per-class CIE Lab colour distance (classes of the input labels; one class, the whole frame,
    where there are none) and the radially averaged power spectrum distance."""
    colours, spectra = [], []
    for fake, (seq, (real_frames, _, _)) in zip(fakes, real.items()):
        classes = labels[seq] if labels is not None else np.zeros(real_frames.shape[:3], np.int64)
        colours.append(np.array([colour_distance(real_frames, fake, classes)]))
        spectra.append(np.array([spectrum_distance(real_frames, fake)]))
    by = "classes of the input labels" if labels is not None else "the whole frame (no class maps)"
    return {"colour_distance_lab": mean_scored(colours, {"extractor": None, "per": f"clip, {by}", **counts},
                                               defined_mean_of),
            "spectrum_distance": mean_scored(spectra, {"extractor": None, "per": "clip", **counts})}


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
