"""Training checkpoints: whether a run's ``latest.pt`` may be resumed (:func:`resumable_state`,
shared by the vid2vid and the prediction trainers), and the generators rebuilt from a checkpoint
(model/trainer.py writes them): the sequential generator, its first-frame (single-image)
generator, and which weights to take, the weight average (``train.ema``) or the last ones; and
a trained single-image run's generator (:func:`single_image_run`), which makes another run's first
frames (the official --use_single_G).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from model.generator import GeneratorConfig, Vid2VidGenerator
from model.official import OfficialFirstFrames, OfficialVid2VidGenerator
from pipeline.core.checkpoint_files import load_checkpoint

log = logging.getLogger("model.checkpoints")


def _differences(found: dict | None, expected: dict) -> list[str]:
    """The keys of a run's identity whose values differ (every key when none was recorded)."""
    if not isinstance(found, dict):
        return ["identity (not recorded)"]
    return [key for key in sorted(set(found) | set(expected)) if found.get(key) != expected.get(key)]


def resumable_state(latest: Path, identity: dict, total_steps: int, final: Path, device: torch.device,
                    rank: int = 0) -> dict | None:
    """``latest``'s state if training may continue from it, else None (rank 0 renames it to
    ``latest.stale.pt``, replacing an older one, and the log says why). Refused when the
    checkpoint was made by another run: its recorded ``identity`` (options and code, and the fingerprints of the data and
    weights it trained on) differs from ``identity``; or when it holds a finished run whose
    ``final`` is gone: the rule was run again (``--forcerun``, or final.pt deleted), which asks for
    a new training, not for the old weights written again."""
    state = load_checkpoint(latest, "delete it to train this run from the start", map_location=device,
                            weights_only=False)
    changed = _differences(state.get("identity"), identity)
    if changed:
        reason = f"it was made by another run (changed: {', '.join(changed)})"
    elif state.get("step", 0) >= total_steps and not final.is_file():
        reason = f"it holds the finished run (step {state['step']}) and {final.name} is gone, so the run was asked again"
    else:
        return state
    stale = latest.with_name("latest.stale.pt")  # one kept: a big run's checkpoints are large
    if rank == 0:
        latest.rename(stale)
    log.warning("not resuming %s: %s; training from the start (the old checkpoint is kept as %s)",
                latest, reason, stale.name)
    return None


def generator_config(model: dict) -> GeneratorConfig:
    """A GeneratorConfig from its stored dict (lists back to tuples)."""
    known = {f.name for f in dataclasses.fields(GeneratorConfig)}
    values = {k: v for k, v in model.items() if k in known}
    if "foreground_labels" in values:
        values["foreground_labels"] = tuple(values["foreground_labels"])
    return GeneratorConfig(**values)


def single_image_config(cfg: GeneratorConfig) -> GeneratorConfig:
    """The first-frame generator of a model: one semantic frame in, no history, no flow (pix2pixHD)."""
    return dataclasses.replace(cfg, n_frames=1, use_history=False, use_flow=False)


def first_frame_method(options: dict) -> str:
    """How frames 0..L-1 are made, in training and synthesis (options as the checkpoint stores
    them): 'none' (a model without history), 'image', 'zero' or 'real'."""
    if options["model"]["n_frames"] <= 1 or not options["model"].get("use_history", True):
        return "none"
    return options["train"].get("first_frame", "real")


def weights_kind(checkpoint: dict, weights: str = "auto") -> str:
    """'average' or 'raw': ``weights`` 'auto' takes the average where the checkpoint has one."""
    has_average = "generator" in (checkpoint.get("averages") or {})
    if weights == "average" and not has_average:
        raise ValueError("the checkpoint holds no weight average (trained with train.ema: 0): use --weights raw")
    if weights not in ("auto", "average", "raw"):
        raise ValueError(f"weights: expected auto, average or raw, got {weights!r}")
    return "average" if weights != "raw" and has_average else "raw"


def load_generator(checkpoint: dict, which: str, kind: str, device: torch.device) -> Vid2VidGenerator:
    """``which``: 'generator' or 'first_generator'; ``kind``: 'average' or 'raw' (the first
    generator of a run that took a trained single-image run's has no average of its own: its
    stored weights are that run's)."""
    cfg = generator_config(checkpoint["options"]["model"])
    if which == "first_generator" and cfg.layout != "official":
        stored = checkpoint.get("first_generator_config")
        cfg = generator_config(stored) if stored else single_image_config(cfg)
    averages = checkpoint.get("averages") or {}
    state = averages[which] if kind == "average" and which in averages else checkpoint[which]
    generator = build_generator(checkpoint, which, cfg).to(device).eval()
    generator.load_state_dict(state)
    return generator


def build_generator(checkpoint: dict, which: str, cfg: GeneratorConfig) -> torch.nn.Module:
    """The network of ``which`` for ``cfg``'s layout: this project's, or NVIDIA's for an imported
    official model (model/official.py), whose first frames come from its pix2pixHD generator."""
    if cfg.layout != "official":
        return Vid2VidGenerator(cfg)
    if which == "first_generator":
        reference = checkpoint["first_generator"].get("reference")  # edge2face: features.npy
        return OfficialFirstFrames(checkpoint["first_generator_layout"], cfg.label_nc,
                                   checkpoint.get("feature_encoder_layout"),
                                   tuple(reference.shape) if reference is not None else None)
    return OfficialVid2VidGenerator(cfg)


class SingleImageRunError(ValueError):
    """A checkpoint given to make the first frames that cannot make them (names the file and why)."""


def single_image_run(path: str | Path, like: GeneratorConfig, device: torch.device) -> tuple[Vid2VidGenerator, GeneratorConfig]:
    """(generator, config) of the trained single-image run at ``path`` (its weight average where it
    has one), frozen, checked to fit a model of config ``like``: one semantic frame in, no history
    (a frame_by_frame run), the same scales and label channels."""
    checkpoint = load_checkpoint(path, map_location="cpu", weights_only=False)
    cfg = generator_config(checkpoint["options"]["model"])
    if cfg.n_frames != 1 or cfg.use_history:
        raise SingleImageRunError(f"{path} is not a single-image model (it needs model.n_frames 1, use_history "
                                  "false: a frame_by_frame run)")
    if cfg.n_local != like.n_local or cfg.label_nc != like.label_nc:
        raise SingleImageRunError(f"{path} has n_local {cfg.n_local}, label_nc {cfg.label_nc}; this run has "
                                  f"{like.n_local}, {like.label_nc}")
    generator = load_generator(checkpoint, "generator", weights_kind(checkpoint), torch.device("cpu"))
    return generator.to(device).requires_grad_(False), cfg
