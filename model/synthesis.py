"""Synthesis: generate every sequence of a split frame by frame with a trained model (paper section 3,
inference; section 4, long videos, multimodal results and semantic manipulation).

    python -m pipeline.stages.synthesize --checkpoint results/demo/checkpoints/vid2vid/final.pt \
        --cache results/demo/cache/index.json --split val --output results/demo/synth/vid2vid

For each sequence it writes ``<output>/<seq>/NNNNNN.png`` and ``<output>/<seq>.mp4`` (H.264 through
ffmpeg-python), streaming: one frame is read from the memory-mapped cache, generated from the
labels (face / pose: the sketch or pose maps) and the model's own previous frames, written to PNG and piped to ffmpeg, so memory stays
bounded for any length. The first L frames are made the way the run was trained
(``train.first_frame``, recorded in the checkpoint): its single-image generator, or zero history;
a model trained on real first frames makes them with a trained single-image run's generator
(``--first-frames-checkpoint``: the run its config names in ``first_frames_from``, the official
--use_single_G), or takes the real video's (``--first-frame real``, which any model accepts: the
real video's first L frames, then the model), and otherwise stops saying so. The checkpoint's
average of G's weights (``train.ema``) is used where it has one (``--weights raw``: the last
weights).

Options: ``--features-seed S`` samples each instance's appearance from the per-class feature
mixtures saved with the checkpoint (multimodal synthesis; the same instance keeps its vector over
time); ``--resample ID`` draws instance ID anew while the rest keep seed 0's vectors;
``--remap 21:11`` rewrites labelIds before generation (semantic manipulation: trees -> buildings).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.checkpoints import (
    SingleImageRunError,
    first_frame_method,
    generator_config,
    load_generator,
    single_image_run,
    weights_kind,
)
from model.inputs import instance_edges, one_hot_labels
from model.multimodal import draw_vector, label_of, sample_features
from model.trainer import cache_shards
from pipeline.core.atomic import atomic_dir, atomic_file
from pipeline.core.cache_format import CacheShard, condition_of, has_instance_maps
from pipeline.core.checkpoint_files import load_checkpoint
from pipeline.core.cityscapes_labels import NUM_LABEL_IDS
from pipeline.core.devices import pick_device
from pipeline.core.images import write_rgb

log = logging.getLogger("model.synthesis")


class SynthesisError(ValueError):
    """What synthesis is asked for does not fit the checkpoint (its first frames, its weights)."""


class Synthesizer:
    """A trained generator (and its first-frame generator, feature mixtures) ready for inference.
    ``weights``: 'auto' (the weight average where the checkpoint has one), 'average' or 'raw'."""

    @classmethod
    def load(cls, checkpoint_path: Path, device: str | None = None, weights: str = "auto",
             first_frames_checkpoint: Path | None = None) -> "Synthesizer":
        """From a final.pt, on ``device`` (default: cuda when available)."""
        dev = pick_device(device)
        checkpoint = load_checkpoint(checkpoint_path, map_location=dev, weights_only=False)
        return cls(checkpoint, dev, weights, first_frames_checkpoint)

    def __init__(self, checkpoint: dict, device: torch.device, weights: str = "auto",
                 first_frames_checkpoint: Path | None = None) -> None:
        opts = checkpoint["options"]
        self.cfg = generator_config(opts["model"])
        self.device = device
        self.first_frames = checkpoint.get("first_frames") or first_frame_method(opts)
        try:
            self.weights = weights_kind(checkpoint, weights)
        except ValueError as err:
            raise SynthesisError(str(err)) from None
        self.generator = load_generator(checkpoint, "generator", self.weights, device)
        self.first_generator = None
        # trained on real first frames beside a single-image run (the official way): its generator
        # makes them here
        if self.first_frames == "image" or (self.first_frames == "real" and checkpoint.get("first_generator") is not None):
            self.first_generator = load_generator(checkpoint, "first_generator", self.weights, device)
        if first_frames_checkpoint is not None:  # a model trained on real first frames: a single-image run makes them
            if self.first_frames != "real":
                raise SynthesisError(f"--first-frames-checkpoint {first_frames_checkpoint}: this model makes its first "
                                     f"frames its own way (train.first_frame {self.first_frames}); only a model "
                                     "trained on real first frames takes them from a single-image run")
            try:
                self.first_generator = single_image_run(first_frames_checkpoint, self.cfg, device)[0].eval()
            except SingleImageRunError as err:
                raise SynthesisError(f"--first-frames-checkpoint {err}") from None
        last_stage = opts["schedule"][-1]
        self.scales, self.scale = last_stage["scales"], last_stage.get("scale", 1.0)
        # edge2face's first frames: encoder features of the real frames pick the look
        self.encodes_real_frames = getattr(self.first_generator, "encoder", None) is not None
        self.gmms = checkpoint.get("feature_gmm")
        if self.cfg.feat_nc and not self.gmms:
            raise ValueError("the model takes encoder features but the checkpoint has no feature mixtures")

    def semantic(self, labels: torch.Tensor, instances: torch.Tensor | None, features: torch.Tensor | None) -> torch.Tensor:
        """One-hot labelIds, instance edges (none without instance maps), encoder features."""
        maps = [one_hot_labels(labels, NUM_LABEL_IDS)]
        if instances is not None:
            maps.append(instance_edges(instances))
        if features is not None:
            maps.append(features)
        return torch.cat(maps, 1)

    def _street_inputs(self, labels_seq, instances_seq, features_seed: int, resample: set[int],
                       remap: dict[int, int] | None):
        """(semantic (1, C, H, W), labelIds (1, H, W)) per frame from labelIds and instance maps
        (each None for a cache without them)."""
        lut = np.arange(256, dtype=np.uint8)
        for src, dst in (remap or {}).items():
            lut[src] = dst
        fixed: dict[int, np.ndarray] = {}
        for labels_np, instances_np in zip(labels_seq, instances_seq):
            labels = torch.from_numpy(lut[np.asarray(labels_np)]).to(self.device)[None]
            instances = None
            if instances_np is not None:
                instances = torch.from_numpy(np.asarray(instances_np).astype(np.int64)).to(self.device)[None]
            if self.scale != 1.0:
                size = (round(labels.shape[-2] * self.scale), round(labels.shape[-1] * self.scale))
                labels = F.interpolate(labels[:, None].float(), size, mode="nearest")[:, 0].long()
                if instances is not None:
                    instances = F.interpolate(instances[:, None].float(), size, mode="nearest")[:, 0].long()
            features = None
            if self.cfg.feat_nc:
                features = self._features(instances, fixed, features_seed, resample).to(self.device)
            yield self.semantic(labels, instances, features), labels

    def _map_inputs(self, maps_seq):
        """(semantic (1, C, H, W) in [-1, 1], None) per frame from (H, W, C) uint8 face / pose maps.
        NVIDIA's edge2face (official layout) takes its 15 maps in [0, 1] and the face parts map after
        them (sketch.style official): (semantic, parts (1, H, W))."""
        official = self.cfg.layout == "official"
        for maps in maps_seq:
            maps = torch.from_numpy(np.asarray(maps)).to(self.device).permute(2, 0, 1)[None]
            if official:
                if maps.shape[1] != self.cfg.label_nc + 1:
                    raise SynthesisError(f"the official face model takes {self.cfg.label_nc} maps and the face parts "
                                         f"per frame, the cache has {maps.shape[1]} channels: build the face dataset "
                                         "with sketch.style: official (docs/official_models.md)")
                yield maps[:, :-1].float() / 255, maps[:, -1].long()
                continue
            semantic = maps.float() / 127.5 - 1
            if self.scale != 1.0:
                size = (round(semantic.shape[-2] * self.scale), round(semantic.shape[-1] * self.scale))
                semantic = F.interpolate(semantic, size, mode="bilinear", align_corners=False)
            yield semantic, None

    def needs_real_frames(self, method: str) -> bool:
        """Whether synthesis reads the real first L frames: taken as they are ('real'), or encoded
        for their look (edge2face's single-image generator)."""
        return method == "real" or (method == "image" and self.encodes_real_frames)

    def first_frames_used(self, first_frame: str | None) -> str:
        """How frames 0..L-1 will be made: the checkpoint's way, or 'real' when asked for."""
        if first_frame not in (None, "real"):
            raise SynthesisError(f"first_frame: expected None (the checkpoint's way) or 'real', got {first_frame!r}")
        if first_frame == "real":
            return "real"
        if self.first_frames == "real" and self.first_generator is not None:
            return "image"
        if self.first_frames == "real":
            raise SynthesisError(
                "this model was trained on real first frames (train.first_frame: real) and has no single-image "
                "generator: give one with --first-frames-checkpoint <a frame_by_frame run's final.pt>, synthesize "
                "with --first-frame real (the real video's first frames), or retrain with train.first_frame: image")
        return self.first_frames

    def frames(self, labels_seq, instances_seq=None, real_seq=None, first_frame: str | None = None,
               features_seed: int = 0, resample: set[int] | None = None, remap: dict[int, int] | None = None,
               hook=None):
        """Yield generated frames (H, W, 3) uint8, one per input frame; inputs are per-frame arrays:
        labelIds and instance maps, or (``instances_seq`` None) the (H, W, C) face / pose maps.
        ``first_frame`` None makes frames 0..L-1 the checkpoint's way, 'real' takes ``real_seq``'s.
        ``hook(t, generator_hook)``: per-frame feature hook factory (the COVST baseline)."""
        for frame in self.frame_tensors(labels_seq, instances_seq, real_seq, first_frame, features_seed, resample,
                                        remap, hook):
            yield ((frame[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()

    @torch.no_grad()
    def frame_tensors(self, labels_seq, instances_seq=None, real_seq=None, first_frame: str | None = None,
                      features_seed: int = 0, resample: set[int] | None = None, remap: dict[int, int] | None = None,
                      hook=None):
        """:meth:`frames` as the generator makes them: (1, 3, H, W) tensors in [-1, 1]."""
        method = self.first_frames_used(first_frame)
        if self.needs_real_frames(method) and real_seq is None:
            raise SynthesisError(f"first frames {method!r} need the real frames (real_seq)")
        if instances_seq is None:
            stream = self._map_inputs(labels_seq)
        else:
            stream = self._street_inputs(labels_seq, instances_seq, features_seed, resample or set(), remap)
        history_len = self.cfg.n_frames - 1
        semantic_history, frame_history = [], []
        for t, (semantic, labels) in enumerate(stream):
            if semantic.shape[1] != self.cfg.label_nc + self.cfg.feat_nc:
                raise ValueError(f"the inputs have {semantic.shape[1]} channels per frame, the model takes "
                                 f"{self.cfg.label_nc + self.cfg.feat_nc} (a cache of another task?)")
            if t == 0:
                semantic_history = [torch.zeros_like(semantic)] * history_len
                frame_history = [[torch.zeros(1, 3, *semantic.shape[-2:], device=self.device)]] * history_len
            step_hook = hook(t) if hook is not None else None
            pyramid = None
            real = None
            if t < history_len and self.needs_real_frames(method):
                real = torch.from_numpy(np.array(real_seq[t])).to(self.device).permute(2, 0, 1)[None].float() / 127.5 - 1
                if real.shape[-2:] != semantic.shape[-2:]:
                    real = F.interpolate(real, semantic.shape[-2:], mode="bilinear", align_corners=False)
            if t < history_len and method == "real":
                frame = real
            elif t < history_len and method == "image":
                encoded = {"real": real} if self.encodes_real_frames else {}
                frame = self.first_generator(semantic, None, labels, scales=self.scales, hook=step_hook, **encoded).frame
            else:
                inputs = torch.cat(semantic_history + [semantic], 1)
                previous = previous_frames(frame_history, getattr(self.generator, "pyramid", None)) if self.cfg.use_history else None
                out = self.generator(inputs, previous, labels, scales=self.scales, hook=step_hook)
                frame, pyramid = out.frame, out.pyramid
            if history_len:
                semantic_history = semantic_history[1:] + [semantic]
                frame_history = frame_history[1:] + [pyramid or [frame]]
            yield frame

    def _features(self, instances, fixed, seed, resample) -> torch.Tensor:
        """Instance features: each instance draws its vector once (seeded by its id), then keeps it."""
        for instance_id in torch.unique(instances).tolist():
            if instance_id not in fixed:
                rng = np.random.default_rng([seed, instance_id, int(instance_id in resample)])
                fixed[instance_id] = draw_vector(self.gmms, label_of(instance_id), self.cfg.feat_nc, rng)
        return sample_features(instances.cpu(), self.gmms, self.cfg.feat_nc, fixed=fixed)


def previous_frames(history: list[list[torch.Tensor]], pyramid=None):
    """The generator's previous frames from the last L steps, each a list of that step's frame at
    every scale, finest first: the frames joined on channels; or, where a step kept its scales (the
    official layout: each scale has its own history), that for each scale, the steps that made one
    frame (the first frames) brought to every scale by ``pyramid`` (the generator's)."""
    if pyramid is not None and any(len(step) > 1 for step in history):
        history = [step if len(step) > 1 else pyramid(step[0]) for step in history]
    levels = min(len(step) for step in history)
    joined = [torch.cat([step[s] for step in history], 1) for s in range(levels)]
    return joined[0] if levels == 1 else joined


class Mp4Writer:
    """Frames piped to ffmpeg (libx264, yuv420p) as they come, bounded memory for long videos; the
    file appears when the ``with`` block ends without error (pipeline/core/atomic.py)::

        with Mp4Writer(path, fps) as video:
            for frame in frames:
                video.write(frame)
    """

    def __init__(self, path: Path, fps: float, ffmpeg: str | None = None) -> None:
        self.path, self.fps, self.ffmpeg = Path(path), fps, ffmpeg
        self.process = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Mp4Writer":
        self.tmp = self._stack.enter_context(atomic_file(self.path))
        return self

    def _start(self, width: int, height: int) -> None:
        import ffmpeg as ffmpeg_python
        import imageio_ffmpeg

        exe = self.ffmpeg or imageio_ffmpeg.get_ffmpeg_exe()
        stream = ffmpeg_python.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}",
                                     framerate=self.fps)
        stream = stream.output(str(self.tmp), format="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=18,
                               vf="pad=ceil(iw/2)*2:ceil(ih/2)*2").global_args("-v", "error").overwrite_output()
        self.process = ffmpeg_python.run_async(stream, cmd=exe, pipe_stdin=True)

    def write(self, frame: np.ndarray) -> None:
        if self.process is None:
            self._start(frame.shape[1], frame.shape[0])
        self.process.stdin.write(np.ascontiguousarray(frame).tobytes())

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self.process is not None:
                self.process.stdin.close()
                if self.process.wait() != 0 and kind is None:
                    raise RuntimeError(f"ffmpeg failed writing {self.path}")
            elif kind is None:
                raise ValueError(f"{self.path}: no frames to write")
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.__exit__(kind, error, traceback)


def write_sequence(frames, output: Path, name: str, fps: float) -> Path:
    """PNG frames into ``output/name/`` and ``output/name.mp4``, both appearing when complete."""
    count = 0
    with atomic_dir(output / name) as folder, Mp4Writer(output / f"{name}.mp4", fps) as video:
        for index, frame in enumerate(frames):
            write_rgb(folder / f"{index:06d}.png", frame)
            video.write(frame)
            count += 1
    log.info("%s: %d frames -> %s", name, count, output / name)
    return output / f"{name}.mp4"


def write_summary(output: Path, summary: dict) -> None:
    """synthesis.json, written last: the run's sentinel for Snakemake."""
    with atomic_file(output / "synthesis.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))


def sequence_inputs(cache: list[str], split: str, sequences: list[str] | None = None):
    """Per sequence of a split: (name, frame count, labels (or face / pose maps), instances (None
    for maps; a None per frame for a cache without instance maps), frame_at(key, i)), read lazily
    from the memory-mapped shards."""
    for shard_path in cache_shards(cache):
        shard = CacheShard(shard_path)
        for seq in shard.sequences(split):
            if sequences and seq["name"] not in sequences:
                continue
            name, n = seq["name"], seq["frames"]
            frame_at = lambda key, i, name=name: shard.slice(name, key, i, i + 1)[0]  # noqa: E731
            if condition_of(shard.header) == "maps":  # face / pose
                yield name, n, (frame_at("condition", i) for i in range(n)), None, frame_at
            else:
                instances = ((frame_at("instances", i) if has_instance_maps(shard.header) else None) for i in range(n))
                yield name, n, (frame_at("labels", i) for i in range(n)), instances, frame_at


def synthesize(checkpoint_path: Path, cache: list[str], split: str, output: Path, first_frame: str | None = None,
               features_seed: int = 0, resample: set[int] | None = None, remap: dict[int, int] | None = None,
               fps: float = 17.0, device: str | None = None, sequences: list[str] | None = None,
               weights: str = "auto", rates: dict[str, float] | None = None,
               first_frames_checkpoint: Path | None = None) -> list[Path]:
    """Synthesize every sequence of ``split``; its video at ``rates[sequence]`` frames per second
    (the dataset's own rate, from the frame manifest), else ``fps``. ``first_frames_checkpoint``: the
    single-image run that makes the first frames of a model trained on real ones."""
    synth = Synthesizer.load(checkpoint_path, device, weights, first_frames_checkpoint)
    method = synth.first_frames_used(first_frame)  # a mismatch stops before anything is written
    written = []
    for name, n, labels, instances, frame_at in sequence_inputs(cache, split, sequences):
        real = [frame_at("frames", i) for i in range(synth.cfg.n_frames - 1)] if synth.needs_real_frames(method) else None
        frames = synth.frames(labels, instances, real, first_frame, features_seed, resample, remap)
        written.append(write_sequence(frames, output, name, (rates or {}).get(name, fps)))
    write_summary(output, {
        "checkpoint": str(checkpoint_path), "split": split, "first_frames": method, "weights": synth.weights,
        "first_frames_checkpoint": str(first_frames_checkpoint) if first_frames_checkpoint else None,
        "features_seed": features_seed, "resample": sorted(resample or []), "remap": remap or {},
        "sequences": [p.stem for p in written]})
    return written
