"""The vid2vid trainer (paper section 3 and 4, implementation details).

    python -m pipeline.stages.train --options run.yaml [--resume] [--max-steps N] [--device cuda]
    torchrun --standalone --nproc_per_node 4 -m pipeline.stages.train --options run.yaml      # DDP, one node

Each step takes a batch of clips from the cache (model/data.py) and makes every frame from the
semantic maps and the previously generated frames. Frames 0..L-1 come from ``train.first_frame``:
a single-image generator trained beside the run (``image``, the default: what the official code
uses at test time, here trained in the same steps on its own frames' losses, its frames entering
G's history detached), zero history (``zero``), or the real frames (``real``). The same setting is
recorded in the checkpoint and followed by synthesis (model/synthesis.py); ``real`` with
``train.single_image_generator`` is the official code's way: real first frames in training, the
single-image run's generator makes them at synthesis. Previous frames enter
the history detached (``tbptt: 1``, the official max_frames_backpropagate).

Losses (paper section 3.2 and the official code, model/losses.py): D_I on every generated frame
and on the hallucinated image h_t of warped frames, with feature matching and VGG (when its weights
are there) on both; the flow loss of Eq. 8 (L1 to the ground-truth flow, and the previous real
frame warped by the estimated flow); the output temporal warp loss; the video discriminators D_V,
one per temporal scale, on every K-frame window at stride K**s of the generated frames, stepping
back from the last one by K frames (the official get_skipped_frames), conditioned on the
ground-truth backward flow. The schedule grows the clip length and the number of active scales
stage by stage (spatio-temporally progressive training); a stage that adds a scale can train it
alone first (``new_scale_alone_steps``, niter_fix_global). Adam with linear decay over the second
half; an exponential moving average of G's weights is kept for synthesis (``train.ema``).

Checkpoints hold the full state (networks, weight averages, optimizers, LR schedulers, grad
scaler, stage, step, RNG states) and are written atomically; ``--resume`` continues exactly where
the last one stopped, if that checkpoint was made by the same run: the same options and code, the
same cache contents (its fingerprint), the same single-image checkpoint and VGG loss (else it is
set aside and training starts over: a rerun after a change of code or data retrains). A finished
run's latest.pt is not resumed once its final.pt is gone (``--forcerun train`` retrains).
A non-finite loss stops the run with the last good checkpoint left intact.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.profiler import record_function
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from model import options as options_mod
from model.checkpoints import (
    SingleImageRunError,
    first_frame_method,
    resumable_state,
    single_image_config,
    single_image_run,
)
from model.data import ClipDataset, Expectation
from model.discriminators import ImageDiscriminator, VideoDiscriminator
from model.ema import WeightAverage
from model.generator import Vid2VidGenerator
from model.inputs import instance_edges, one_hot_labels
from model.losses import VGGLoss
from model.multimodal import FeatureEncoder, fit_class_gmms, instance_vectors
from model.objective import Objective
from pipeline.core.cache_format import cache_fingerprint
from pipeline.core.checkpoint_files import save_checkpoint
from pipeline.core.cityscapes_labels import NUM_LABEL_IDS
from pipeline.core.devices import autocast, pick_device, resolve_precision
from pipeline.core.progress import progress
from pipeline.core.weights import DEFAULT_ENTRIES, WeightsError, load_state_dict, sha256_of

log = logging.getLogger("model.trainer")


class NonFiniteLoss(RuntimeError):
    pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cache_shards(paths: list[str]) -> list[str]:
    """Shard files from a list of shards or of index.json files."""
    shards = []
    for path in paths:
        if path.endswith(".json"):
            index = json.loads(Path(path).read_text())
            shards += [str(Path(path).parent / shard["path"]) for shard in index["shards"]]
        else:
            shards.append(path)
    return shards


class Trainer:
    def __init__(self, opts: options_mod.Options, device: torch.device, rank: int = 0, world: int = 1) -> None:
        self.opts, self.device, self.rank, self.world = opts, device, rank, world
        seed_everything(opts.train.seed)
        g = opts.model
        self.memory_format = torch.channels_last if self._channels_last(opts, device) else torch.contiguous_format
        self.generator = Vid2VidGenerator(g).to(device, memory_format=self.memory_format)
        self.first_frames = first_frame_method(options_mod.to_dict(opts))
        # first_frame 'image': a single-image generator (no history, no flow) makes frames 0..L-1,
        # trained beside G, or a trained single-image run's (frozen: the official --use_single_G)
        self.first_generator, self.first_config, self.first_trainable = None, None, False
        # (with first_frame 'real' it is kept for synthesis only: the official code trains on the real
        # first frames and makes them with --use_single_G at test time)
        if self.first_frames in ("image", "real") and opts.train.single_image_generator:
            self.first_generator, self.first_config = self._single_image_run(opts.train.single_image_generator)
        elif self.first_frames == "image":
            self.first_config, self.first_trainable = single_image_config(g), True
            self.first_generator = Vid2VidGenerator(self.first_config)
        if self.first_generator is not None:
            self.first_generator = self.first_generator.to(device, memory_format=self.memory_format)
        self.encoder = (FeatureEncoder(g.feat_nc, norm=g.norm).to(device, memory_format=self.memory_format)
                        if g.feat_nc else None)
        d = opts.discriminator
        kwargs = {"ndf": d.ndf, "n_layers": d.n_layers, "num_scales": d.num_scales, "norm": d.norm}
        self.image_d = ImageDiscriminator(g.label_nc, g.output_nc, **kwargs).to(device, memory_format=self.memory_format)
        self.video_ds = nn.ModuleList(
            [VideoDiscriminator(d.k_frames, g.output_nc, **kwargs) for _ in range(d.temporal_scales if d.video else 0)]
        ).to(device, memory_format=self.memory_format)
        o = opts.optim
        self.opt_g = torch.optim.Adam(self.g_parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
        self.opt_d = torch.optim.Adam(self.d_parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
        self.averages = {}  # weight averages kept for synthesis
        if opts.train.ema > 0:
            self.averages["generator"] = WeightAverage(self.generator, opts.train.ema)
            if self.first_trainable:
                self.averages["first_generator"] = WeightAverage(self.first_generator, opts.train.ema)
        total, decay = opts.total_steps, opts.decay_steps
        factor = lambda step: 1.0 if step < total - decay else max(0.0, (total - step) / max(decay, 1))  # noqa: E731
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)
        self.precision = resolve_precision(opts.train.precision, device)  # what this device runs fast
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.step = 0
        self.last_sample = None
        self.g_model, self.image_d_model, self.video_d_models = self.generator, self.image_d, list(self.video_ds)
        if world > 1:
            def ddp(module, unused=False):
                return nn.parallel.DistributedDataParallel(
                    module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)

            # with local enhancers, the scales not active in a stage get no gradients
            self.g_model = ddp(self.generator, unused=g.n_local > 0)
            self.image_d_model = ddp(self.image_d)
            self.video_d_models = [ddp(m) for m in self.video_ds]
        if opts.train.compile:
            self.g_model = torch.compile(self.g_model)
        self.objective = Objective(opts.loss, self.image_d_model, self.video_d_models, d.k_frames, vgg=self._vgg(),
                                   score_first_frames=self.first_trainable,
                                   regularise_mask=self.first_frames == "zero",  # official: --no_first_img
                                   output_warp=g.use_history, warp_mode=g.warp_mode)
        self._datasets: dict[int, ClipDataset] = {}

    @staticmethod
    def _channels_last(opts: options_mod.Options, device: torch.device) -> bool:
        """``train.channels_last`` on CUDA only: on the CPU, torch 2.14 gives these networks wrong
        gradients in channels_last at batch 1 (G's weight gradients 1.6x their norm off, the losses
        right; tests/test_model.py), and the layout is a GPU speed option."""
        if opts.train.channels_last and device.type != "cuda":
            log.warning("train.channels_last is ignored on %s: its gradients are wrong on the CPU in torch %s",
                        device.type, torch.__version__)
            return False
        return opts.train.channels_last

    def g_parameters(self, stage_index: int | None = None) -> list[nn.Parameter]:
        """What the G update trains: the generator, its first-frame generator and the feature
        encoder E (trained with G); in the first ``new_scale_alone_steps`` of a stage that adds a
        scale, only that scale of the two generators."""
        if stage_index is not None:
            stage = self.opts.schedule[stage_index]
            if self.step - self.opts.stage_start(stage_index) < stage.new_scale_alone_steps:
                return [p for g in self.trained_generators() for p in g.finest_scale(stage.scales).parameters()]
        params = [p for g in self.trained_generators() for p in g.parameters()]
        return params + (list(self.encoder.parameters()) if self.encoder is not None else [])

    def trained_generators(self) -> list[Vid2VidGenerator]:
        return [self.generator] + ([self.first_generator] if self.first_trainable else [])

    @functools.cached_property
    def identity(self) -> dict:
        """What the weights depend on besides the seed, recorded in every checkpoint: a checkpoint
        of another identity is never resumed (model/checkpoints.py). The options (with the code
        version), the fingerprint of the cache's contents, the single-image run's checkpoint that
        makes the first frames, and whether the VGG loss ran (it needs weights that may appear)."""
        single = self.opts.train.single_image_generator
        return {"options": options_mod.to_dict(self.opts), "cache": cache_fingerprint(cache_shards(self.opts.cache)),
                "first_frames_checkpoint": sha256_of(single) if single else None,
                "vgg_loss": self.objective.vgg is not None}

    def _single_image_run(self, path: str):
        """The generator of a trained single-image run (its weight average where it has one), frozen."""
        try:
            return single_image_run(path, self.opts.model, torch.device("cpu"))
        except SingleImageRunError as err:
            raise options_mod.OptionsError(f"train.single_image_generator: {err}") from None

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.image_d.parameters()) + list(self.video_ds.parameters())

    def _vgg(self) -> VGGLoss | None:
        if self.opts.loss.lambda_vgg <= 0:
            return None
        try:
            state = load_state_dict(DEFAULT_ENTRIES["vgg19"], user_path=self.opts.loss.vgg_weights)
        except WeightsError as err:
            log.warning("VGG loss disabled: %s", err)
            self.vgg_disabled_reason = str(err)
            return None
        return VGGLoss(state).to(self.device)

    # ------------------------------------------------------------------ data
    def dataset(self, stage_index: int) -> ClipDataset:
        if stage_index not in self._datasets:
            stage = self.opts.schedule[stage_index]
            lo, hi = self.opts.train.scale_augment
            self._datasets[stage_index] = ClipDataset(
                cache_shards(self.opts.cache), n_frames=stage.n_frames, max_t_step=self.opts.train.max_t_step,
                crop=tuple(stage.crop) if stage.crop else None, scale=(lo * stage.scale, hi * stage.scale),
                flip=self.opts.train.flip,
                seed=self.opts.train.seed, split="train",
                expect=Expectation(dataset=self.opts.dataset, label_nc=self.opts.model.label_nc),
                flows=("flow_backward",))
            self._check_condition(self._datasets[stage_index].refs[0])
        return self._datasets[stage_index]

    def _check_condition(self, ref) -> None:
        """Face / pose maps carry no labelIds or instances: no fg/bg prior, no instance features;
        a labels cache without instance maps (instances mode none): no instance features."""
        g, condition = self.opts.model, ref.condition
        if condition == "labels" and not ref.instance_maps and g.feat_nc:
            raise options_mod.OptionsError("the cache has no instance maps (instances mode none): instance features "
                                           "(model.feat_nc) need them; set model.feat_nc: 0")
        if condition == "maps" and g.foreground:
            raise options_mod.OptionsError("the cache holds face / pose maps, not labelIds: the foreground prior "
                                           "(Eq. 9) needs labels; set model.foreground: false")
        if condition == "maps" and g.feat_nc:
            raise options_mod.OptionsError("the cache holds face / pose maps: instance features (model.feat_nc) "
                                           "need instance maps; set model.feat_nc: 0")

    def batch_indices(self, stage_index: int, step: int) -> list[int]:
        """The dataset indices of a step: a permutation per epoch from (seed, epoch), this rank's slice."""
        n = len(self.dataset(stage_index))
        per_step = self.opts.train.batch_size * self.world
        steps_per_epoch = max(1, n // per_step) if n >= per_step else 1
        epoch, position = divmod(step, steps_per_epoch)
        order = np.random.default_rng([self.opts.train.seed, epoch]).permutation(n)
        if n < per_step:
            order = np.resize(order, per_step)
        chosen = order[position * per_step : (position + 1) * per_step]
        return [int(i) for i in chosen[self.rank :: self.world]], epoch

    def load_batch(self, stage_index: int, step: int) -> dict:
        dataset = self.dataset(stage_index)
        indices, epoch = self.batch_indices(stage_index, step)
        dataset.set_epoch(epoch)
        if self.opts.train.workers > 0:
            loader = torch.utils.data.DataLoader(dataset, batch_size=len(indices), sampler=indices,
                                                 num_workers=self.opts.train.workers)
            return next(iter(loader))
        return torch.utils.data.default_collate([dataset[i] for i in indices])

    def to_inputs(self, batch: dict) -> dict:
        """Device tensors: semantic maps (one-hot + edges, or the face / pose maps in [-1, 1]),
        frames in [-1, 1], backward flows."""
        dev = self.device
        frames = batch["frames"].to(dev, non_blocking=True).float() / 127.5 - 1.0
        if "condition" in batch:  # face sketch / pose maps (pipeline/datasets/conditions.py)
            semantic = batch["condition"].to(dev, non_blocking=True).float() / 127.5 - 1.0
            return {"labels": None, "semantic": semantic, "condition": semantic, "frames": frames,
                    "flow": batch["flow_backward"].to(dev).float(), "confidence": batch["confidence_backward"].to(dev)}
        labels = batch["labels"].to(dev, non_blocking=True)
        if "instances" in batch:
            instances = batch["instances"].to(dev)
            semantic = torch.cat([one_hot_labels(labels, NUM_LABEL_IDS), instance_edges(instances)], 2)
        else:  # instances mode none (the official --no_instance): no edge channel
            semantic = one_hot_labels(labels, NUM_LABEL_IDS)
        condition = semantic
        if self.encoder is not None:  # multimodal: instance-averaged features of the real frames
            b, t = frames.shape[:2]
            feats = self.encoder(frames.flatten(0, 1), instances.flatten(0, 1)).unflatten(0, (b, t))
            condition = torch.cat([semantic, feats], 2)
        return {"labels": labels, "semantic": semantic, "condition": condition, "frames": frames,
                "flow": batch["flow_backward"].to(dev).float(), "confidence": batch["confidence_backward"].to(dev)}

    # ------------------------------------------------------------------ generation
    def generate(self, inputs: dict, scales: int) -> dict:
        """Make the clip's frames (from frame L on with real first frames, else all); returns
        ``{"start": first generated index, "outputs": [per-frame dict]}``, each with the
        generator's outputs, ``t`` and ``source`` ('first': the single-image generator, or 'main')."""
        cfg, train = self.opts.model, self.opts.train
        semantic, frames = inputs["condition"], inputs["frames"]
        b, t_total, _, h, w = frames.shape
        history_len = cfg.n_frames - 1
        start = history_len if self.first_frames == "real" else 0
        zeros = torch.zeros(b, 3, h, w, device=self.device)
        history = [frames[:, t] if self.first_frames == "real" else zeros for t in range(history_len)]
        sem_zero = torch.zeros_like(semantic[:, 0])
        outputs = []
        for t in range(start, t_total):
            current = inputs["labels"][:, t] if inputs["labels"] is not None else None  # for Eq. 9
            if self.first_generator is not None and t < history_len:  # the single-image generator
                network, source, prev = self.first_generator, "first", None
                sem = semantic[:, t]
            else:
                network, source = self.g_model, "main"
                sem = torch.cat([semantic[:, s] if s >= 0 else sem_zero for s in range(t - history_len, t + 1)], 1)
                prev = torch.cat(history, 1) if cfg.use_history else None
            sem = sem.contiguous(memory_format=self.memory_format)
            run = lambda s, p, net=network, cur=current: net(s, p, cur, scales=scales)  # noqa: E731
            if train.grad_checkpoint:
                # ``f=run`` binds this frame's network and labels: the backward pass recomputes each
                # frame later, when the loop's ``run`` is the last frame's
                out = grad_checkpoint(lambda s, p, f=run: tuple(vars(f(s, p)).values()), sem, prev, use_reentrant=False)
                out = dict(zip(("frame", "hallucinated", "warped", "flow", "mask"), out))
            else:
                out = vars(run(sem, prev))
            out.update(t=t, source=source)
            outputs.append(out)
            if history_len:
                new = out["frame"]
                # the single-image generator learns from its own frames' losses only, as the separately
                # trained pix2pixHD of the official recipe: G's losses do not reshape its output
                if source == "first" or (train.tbptt and (t - start + 1) % train.tbptt == 0):
                    new = new.detach()
                history = history[1:] + [new]
        return {"start": start, "outputs": outputs}

    # ------------------------------------------------------------------ losses
    def losses(self, inputs: dict, generated: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(G loss, D loss, logs) of Eq. 5 on a generated clip (model/objective.py)."""
        return self.objective(inputs, generated)

    # ------------------------------------------------------------------ one step
    def autocast(self):
        return autocast(self.precision, self.device)

    def train_step(self, batch: dict, stage_index: int) -> dict:
        stage = self.opts.schedule[stage_index]
        # the phases are named for torch.profiler (benchmarks/train_speed.py --profile); no cost otherwise
        with self.autocast():
            with record_function("step.inputs"):
                inputs = self.to_inputs(batch)
            with record_function("step.generate"):
                generated = self.generate(inputs, stage.scales)
            with record_function("step.losses"):
                g_loss, d_loss, logs = self.losses(inputs, generated)
        if not (torch.isfinite(g_loss) and torch.isfinite(d_loss)):
            raise NonFiniteLoss(f"step {self.step}: non-finite loss (G {g_loss.item()}, D {d_loss.item()})")
        # G's gradients into the generators only, D's (on the same predictions) into D only
        with record_function("step.backward_g"):
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(g_loss).backward(inputs=self.g_parameters(stage_index), retain_graph=True)
        with record_function("step.backward_d"):
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward(inputs=self.d_parameters())
        with record_function("step.update"):
            if not self.scaler.is_enabled():  # fp16's scaler skips a step with inf gradients itself
                self._check_gradients(stage_index)
            self.scaler.step(self.opt_g)
            self.scaler.step(self.opt_d)
            self.scaler.update()
            self.sched_g.step()
            self.sched_d.step()
            # the average's warm-up restarts with each stage: a newly added scale starts from its
            # initialisation, and an average reaching back before the stage would drag it there
            for name, average in self.averages.items():
                average.update(getattr(self, name), self.step - self.opts.stage_start(stage_index))
        self.step += 1
        if self.step % self.opts.train.sample_every == 0:
            start = generated["start"]
            fake = torch.stack([o["frame"][0] for o in generated["outputs"]]).detach().float().cpu()
            self.last_sample = (inputs["frames"][0, start:].float().cpu(), fake)
        out = {k: float(v.detach()) for k, v in logs.items()}
        out["g_total"], out["d_total"] = float(g_loss.detach()), float(d_loss.detach())
        return out

    def _check_gradients(self, stage_index: int) -> None:
        """Stop before a non-finite gradient reaches the weights (finite losses can still overflow)."""
        for name, params in (("G", self.g_parameters(stage_index)), ("D", self.d_parameters())):
            grads = [p.grad for p in params if p.grad is not None]
            if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
                raise NonFiniteLoss(f"step {self.step}: non-finite gradient of {name}'s weights")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {
            "options": options_mod.to_dict(self.opts),
            "identity": self.identity,
            "step": self.step,
            "stage": self.opts.stage_at(self.step)[0],
            "generator": self.generator.state_dict(),
            "image_d": self.image_d.state_dict(),
            "video_ds": self.video_ds.state_dict(),
            "encoder": self.encoder.state_dict() if self.encoder is not None else None,
            "first_generator": self.first_generator.state_dict() if self.first_generator is not None else None,
            "first_generator_config": dataclasses.asdict(self.first_config) if self.first_config else None,
            "first_frames": self.first_frames,
            "averages": {name: average.state_dict() for name, average in self.averages.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "vgg_enabled": self.objective.vgg is not None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.image_d.load_state_dict(state["image_d"])
        self.video_ds.load_state_dict(state["video_ds"])
        if self.encoder is not None:
            self.encoder.load_state_dict(state["encoder"])
        if self.first_generator is not None:
            self.first_generator.load_state_dict(state["first_generator"])
        for name, average in self.averages.items():
            average.load_state_dict(state["averages"][name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        set_rng_state(state["rng"])

    @torch.no_grad()
    def fit_feature_gmms(self) -> dict:
        """Per-class Gaussian mixtures of E's instance features over the training clips."""
        dataset = self.dataset(len(self.opts.schedule) - 1)
        vectors: dict[int, list] = {}
        for index in range(len(dataset)):
            batch = torch.utils.data.default_collate([dataset[index]])
            frames = batch["frames"].to(self.device).float().flatten(0, 1) / 127.5 - 1.0
            instances = batch["instances"].to(self.device).flatten(0, 1)
            for label, vecs in instance_vectors(self.encoder(frames, instances), instances).items():
                vectors.setdefault(label, []).extend(vecs)
        return fit_class_gmms(vectors, seed=self.opts.train.seed)

    def save(self, path: Path) -> None:
        save_checkpoint(self.state_dict(), path)


def setup_distributed() -> tuple[int, int, torch.device | None]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world, device


def _resume(trainer: Trainer, latest: Path, final: Path, rank: int) -> None:
    """Continue from ``latest`` if it is this run's and unfinished business (model/checkpoints.py);
    else it is set aside and training starts over."""
    state = resumable_state(latest, trainer.identity, trainer.opts.total_steps, final, trainer.device, rank)
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed from %s at step %d", latest, trainer.step)


def _start_run_log(trainer: Trainer, out: Path, world: int):
    """Log the schedule's warnings, write run.json (what this run is) and open TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    opts = trainer.opts
    warnings = options_mod.schedule_warnings(opts)
    for warning in warnings:
        log.warning("%s", warning)
    info = {"options": options_mod.to_dict(opts), "device": str(trainer.device), "world_size": world,
            "torch": torch.__version__, "precision": trainer.precision, "vgg_loss": trainer.objective.vgg is not None,
            "vgg_disabled_reason": getattr(trainer, "vgg_disabled_reason", None),
            "first_frames": trainer.first_frames, "schedule_warnings": warnings}
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(info, indent=1, default=str))
    return SummaryWriter(str(out / "tensorboard"))


def _log_step(writer, trainer: Trainer, logs: dict, frames_per_s: float) -> None:
    """The step's losses and speed every log_every steps, a sample clip every sample_every."""
    train_opts, step = trainer.opts.train, trainer.step
    if step % train_opts.log_every == 0:
        for key, value in logs.items():
            writer.add_scalar(f"loss/{key}", value, step)
        writer.add_scalar("speed/train_frames_per_s", frames_per_s, step)
    if trainer.last_sample is not None and step % train_opts.sample_every == 0:
        real, fake = trainer.last_sample  # (T, 3, H, W) each, in [-1, 1]
        writer.add_images("clip/real_top_generated_bottom", (torch.cat([real, fake], 2) + 1) / 2, step)


def _save_final(trainer: Trainer, final: Path) -> None:
    """final.pt: the trained state (and the feature GMMs of a multimodal run), written atomically."""
    state = trainer.state_dict()
    if trainer.encoder is not None:
        state["feature_gmm"] = trainer.fit_feature_gmms()
    save_checkpoint(state, final)


def train(opts: options_mod.Options, resume: bool = False, max_steps: int | None = None,
          device: str | None = None) -> Path:
    """Train the run ``opts`` describes (resuming its latest.pt with ``resume``) up to ``max_steps``
    or the schedule's end; returns the path of final.pt (written once the schedule is done)."""
    rank, world, dist_device = setup_distributed()
    dev = dist_device or pick_device(device)
    out = Path(opts.output)
    trainer = Trainer(opts, dev, rank, world)
    latest, final = out / "latest.pt", out / "final.pt"
    if resume and latest.is_file():
        _resume(trainer, latest, final, rank)
    writer = _start_run_log(trainer, out, world) if rank == 0 else None
    stop = opts.total_steps if max_steps is None else min(opts.total_steps, max_steps)
    bar = progress(total=opts.total_steps, initial=trainer.step, desc=f"train {out.name}", unit="step",
                   every=opts.train.log_every, disable=rank != 0)
    started, frames = time.perf_counter(), 0.0
    while trainer.step < stop:
        stage_index, _ = opts.stage_at(trainer.step)
        batch = trainer.load_batch(stage_index, trainer.step)
        try:
            logs = trainer.train_step(batch, stage_index)
        except NonFiniteLoss as err:
            log.error("%s; stopping, the last good checkpoint (%s) is kept", err, latest)
            raise
        frames += logs["frames"]
        bar.update(1)
        bar.set_postfix(stage=stage_index, g=f"{logs['g_total']:.3f}", d=f"{logs['d_total']:.3f}", refresh=False)
        if writer is not None:
            _log_step(writer, trainer, logs, frames / (time.perf_counter() - started))
        if rank == 0 and trainer.step % opts.train.checkpoint_every == 0 and trainer.step < opts.total_steps:
            trainer.save(latest)
    bar.close()
    if rank == 0:
        if trainer.step >= opts.total_steps:  # final.pt first: a finished latest.pt says final.pt was written
            _save_final(trainer, final)
        trainer.save(latest)
        writer.close()
    if world > 1:
        dist.destroy_process_group()
    return final
