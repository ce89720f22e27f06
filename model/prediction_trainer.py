"""Training of the future-prediction networks (paper section 4, Table 3): the semantic-map predictor
(model/label_predictor.py) and the PredNet / MCNet baselines (model/frame_predictors.py).

    python -m pipeline.stages.train_predictor --dataset demo --kind labels --out results/demo/prediction/labels

Clips of ``observed + horizon`` frames come from the cache's train split (model/data.py: frames,
the labels stage's maps, the backward flow and its confidence; random temporal stride up to
``max_t_step``, horizontal flips, random ``crop`` windows: the networks are convolutional, so they
train on crops and predict whole frames); the first ``observed`` are given and the next ``horizon``
rolled out and scored (:func:`model.label_predictor.prediction_loss`: maps;
:func:`model.frame_predictors.frame_prediction_loss`: frames). Adam with vid2vid's schedule (constant, then a
linear decay over the second half), bf16 autocast where the device has it (``precision: auto``).
The batch of step s is drawn from (seed, s) alone, and checkpoints hold the network, optimizer,
scheduler, step and RNG states, written atomically every ``checkpoint_every`` steps: a run killed
at any point resumes where its last checkpoint stopped and ends with the same weights as one that
ran through; a checkpoint made with other options or from another cache (its fingerprint), or a
finished one whose final.pt is gone, is set aside and training starts over. Writes
``final.pt`` and ``metrics.json`` (last losses, seconds) when done. Data-parallel under torchrun
(``torchrun --nproc_per_node N -m pipeline.stages.train_predictor ...``): each rank takes its slice
of the step's N x batch_size clips and the gradients are averaged over ranks (all-reduce) before
every update, so the weights stay the same on every rank; rank 0 writes the checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from model import frame_predictors
from model.checkpoints import resumable_state
from model.data import ClipDataset, Expectation
from model.frame_predictors import FramePredictorConfig, frame_prediction_loss
from model.label_predictor import LabelPredictor, LabelPredictorConfig, prediction_loss
from model.trainer import cache_shards, rng_state, seed_everything, set_rng_state, setup_distributed
from pipeline.core.atomic import atomic_file
from pipeline.core.cache_format import cache_fingerprint
from pipeline.core.checkpoint_files import load_checkpoint, save_checkpoint
from pipeline.core.code_version import code_version
from pipeline.core.devices import autocast, pick_device, resolve_precision
from pipeline.core.progress import progress

log = logging.getLogger("model.prediction_trainer")
KINDS = ("labels", "prednet", "mcnet")  # the semantic-map predictor, the two baselines


@dataclass(frozen=True)
class PredictorTrainOptions:
    steps: int = 400
    batch_size: int = 4
    lr: float = 2e-4
    horizon: int = 4  # maps / frames rolled out and scored per training clip
    crop: tuple[int, int] | None = None  # (width, height) training windows; None: whole frames
    max_t_step: int = 1
    flip: bool = True
    lambda_flow: float = 1.0
    seed: int = 0
    precision: str = "auto"
    checkpoint_every: int = 50
    log_every: int = 10


def _identity(kind: str, model_cfg, observed: int, opts: PredictorTrainOptions, dataset: str | None,
              cache: str) -> dict:
    """What makes two checkpoints the same run (the options, the trainer's code and the
    fingerprint of the cache's contents): a checkpoint of another identity is not resumed
    (model/checkpoints.py)."""
    return {"kind": kind, "config": dataclasses.asdict(model_cfg), "observed": observed,
            "options": dataclasses.asdict(opts), "dataset": dataset, "cache": cache,
            "code": code_version(__name__)}


def _build(kind: str, model_cfg):
    return LabelPredictor(model_cfg) if kind == "labels" else frame_predictors.build(model_cfg)


def _loss(kind: str, model, batch: dict, observed: int, dev: torch.device, lambda_flow: float):
    if kind == "labels":
        return prediction_loss(model, batch["labels"].to(dev), batch["flow_backward"].to(dev).float(),
                               batch["confidence_backward"].to(dev), lambda_flow)
    return frame_prediction_loss(model, batch["frames"].to(dev).float() / 127.5 - 1.0, observed)


def train_predictor(kind: str, cache: list[str], output: Path, model_cfg: LabelPredictorConfig | FramePredictorConfig,
                    opts: PredictorTrainOptions, observed: int | None = None, dataset: str | None = None,
                    device: str | None = None, max_steps: int | None = None) -> Path:
    """Train the ``kind`` network (resuming ``output/latest.pt`` when it is this run's) up to
    ``max_steps`` or ``opts.steps``; returns ``output/final.pt`` (written once all steps are done).
    ``observed``: frames given per clip (the label predictor's own ``observed`` by default)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    observed = observed or model_cfg.observed
    rank, world, dist_device = setup_distributed()
    dev = dist_device or pick_device(device)
    precision = resolve_precision(opts.precision, dev)
    seed_everything(opts.seed)
    model = _build(kind, model_cfg).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    half = opts.steps // 2
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 1.0 if s < opts.steps - half else max(0.0, (opts.steps - s) / max(half, 1)))
    shards = cache_shards(cache)
    dataset_ = ClipDataset(shards, n_frames=observed + opts.horizon, max_t_step=opts.max_t_step,
                           crop=tuple(opts.crop) if opts.crop else None, flip=opts.flip, seed=opts.seed, split="train",
                           expect=Expectation(dataset=dataset), flows=("flow_backward",))
    identity = _identity(kind, model_cfg, observed, opts, dataset, cache_fingerprint(shards))
    output.mkdir(parents=True, exist_ok=True)
    latest, final = output / "latest.pt", output / "final.pt"
    step = 0
    state = resumable_state(latest, identity, opts.steps, final, dev, rank) if latest.is_file() else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step = state["step"]
        log.info("resumed from %s at step %d", latest, step)

    def save(path: Path, logs: dict | None = None) -> None:
        if rank != 0:
            return
        state = {"identity": identity, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": rng_state(), "logs": logs}
        save_checkpoint(state, path)

    stop = opts.steps if max_steps is None else min(opts.steps, max_steps)
    bar = progress(total=opts.steps, initial=step, desc=f"train {output.name}", unit="step", every=opts.log_every,
                   disable=rank != 0)
    started, logs = time.perf_counter(), {}
    while step < stop:
        per_step = opts.batch_size * world
        indices = np.random.default_rng([opts.seed, step]).choice(len(dataset_), per_step,
                                                                  replace=len(dataset_) < per_step)[rank::world]
        dataset_.set_epoch(step)  # each step's clips: other windows, strides and flips
        batch = torch.utils.data.default_collate([dataset_[int(i)] for i in indices])
        with autocast(precision, dev):
            loss, parts = _loss(kind, model, batch, observed, dev, opts.lambda_flow)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: non-finite predictor loss; the last checkpoint ({latest}) is kept")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            _average_gradients(model, world)
        optimizer.step()
        scheduler.step()
        step += 1
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
        bar.update(1)
        bar.set_postfix(refresh=False, **{k: f"{v:.3f}" for k, v in logs.items()})
        if step % opts.checkpoint_every == 0 and step < opts.steps:
            save(latest, logs)
    bar.close()
    if step >= opts.steps and rank == 0:  # final.pt first: a finished latest.pt says final.pt was written
        save(final, logs)
        with atomic_file(output / "metrics.json") as tmp:
            tmp.write_text(json.dumps({"steps": step, "precision": precision, "world_size": world, "seconds":
                                       round(time.perf_counter() - started, 1), "last": logs}, indent=1))
    save(latest, logs)  # where a run stopped by max_steps resumes
    if world > 1:
        dist.destroy_process_group()
    return final


def _average_gradients(model: torch.nn.Module, world: int) -> None:
    """Data parallelism: every rank's gradients replaced by their mean over ranks (a parameter
    without a gradient on a rank counts as zero there, so all ranks reduce the same tensors)."""
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad.div_(world)


def load_predictor(path: Path, device: torch.device, kind: str | None = None):
    """(kind, the trained network in eval mode on ``device``, frames it was trained to observe) of a
    final.pt; ``kind`` checks what it is."""
    state = load_checkpoint(path, map_location=device, weights_only=False)
    identity = state.get("identity", {})
    if identity.get("kind") not in KINDS or (kind is not None and identity["kind"] != kind):
        raise ValueError(f"{path} is not a {kind or 'prediction'} checkpoint (it holds {identity.get('kind')!r})")
    settings = dict(identity["config"])
    if identity["kind"] == "labels":
        settings.setdefault("flow_prior", False)  # checkpoints from before the option were trained without it
    config = (LabelPredictorConfig if identity["kind"] == "labels" else FramePredictorConfig)(**settings)
    model = _build(identity["kind"], config).to(device)
    model.load_state_dict(state["model"])
    return identity["kind"], model.eval(), identity["observed"]
