"""Training options: one YAML/JSON mapping, defaults from the official 512x256 recipe where the
paper is silent, scaled down by config for CPU runs.

    model:       generator (model/generator.py GeneratorConfig), discriminators
    loss:        GAN mode and the weights of every term (lambda_flow = 10, Eq. 8)
    optim:       Adam (2e-4, betas 0.5/0.999), linear decay to 0 over the last decay_steps
    schedule:    the spatio-temporally progressive stages: each has steps, n_frames (clip length,
                 growing) and scales (active local enhancers, growing) and the crop size
    train:       batch, temporal stride, truncated backprop window, precision, speed options,
                 checkpoint / log / sample intervals, seed
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from model.generator import GeneratorConfig


@dataclass
class DiscriminatorOptions:
    ndf: int = 64
    n_layers: int = 3
    num_scales: int = 2  # image scales of D_I and of each D_V
    temporal_scales: int = 2  # D_V's on frame strides 1, 3, ... (3**s)
    k_frames: int = 3  # K frames per D_V window
    norm: str = "instance"
    video: bool = True  # ablation "no D_V": False


@dataclass
class LossOptions:
    gan: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_flow: float = 10.0
    lambda_temporal: float = 1.0  # weight of D_V's GAN + feature-matching terms
    vgg_weights: str | None = None  # path to vgg19 weights; else the registry's cache / download


@dataclass
class OptimOptions:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_steps: int = 0  # linear decay to 0 over the last decay_steps of the whole schedule


@dataclass
class Stage:
    steps: int
    n_frames: int = 3
    scales: int = 0
    scale: float = 1.0  # resize of the cached frames at this stage (0.5: half resolution)
    crop: tuple[int, int] | None = None  # (width, height) after resizing; None = the whole frame


@dataclass
class TrainOptions:
    batch_size: int = 1
    max_t_step: int = 1
    tbptt: int = 0  # detach the generated history every tbptt frames (0: backprop through the clip)
    first_frame: str = "real"  # before frame L: 'real' history, 'zero' history, or an 'image' generator
    precision: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    grad_checkpoint: bool = False
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    sample_every: int = 100
    scale_augment: tuple[float, float] = (1.0, 1.0)
    flip: bool = True


@dataclass
class Options:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorOptions = field(default_factory=DiscriminatorOptions)
    loss: LossOptions = field(default_factory=LossOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    schedule: list[Stage] = field(default_factory=lambda: [Stage(steps=1000)])
    train: TrainOptions = field(default_factory=TrainOptions)
    dataset: str | None = None  # the cache header must name this dataset
    cache: list[str] = field(default_factory=list)  # shard files, or one index.json
    output: str = "checkpoints/run"
    code: str = ""  # version of the code that trains this run (the workflow sets it); part of resume's check

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.schedule)

    def stage_at(self, step: int) -> tuple[int, Stage]:
        end = 0
        for index, stage in enumerate(self.schedule):
            end += stage.steps
            if step < end:
                return index, stage
        return len(self.schedule) - 1, self.schedule[-1]


class OptionsError(ValueError):
    pass


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise OptionsError(f"{where}: expected a mapping, got {data!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise OptionsError(f"{where}: unknown option(s) {unknown}; allowed: {sorted(names)}")
    values = {}
    for key, value in data.items():
        if isinstance(value, list) and key in ("crop", "scale_augment", "foreground_labels"):
            value = tuple(value)
        values[key] = value
    return cls(**values)


def from_dict(data: dict) -> Options:
    data = dict(data or {})
    sections = {"model": GeneratorConfig, "discriminator": DiscriminatorOptions, "loss": LossOptions,
                "optim": OptimOptions, "train": TrainOptions}
    kwargs = {}
    for key, cls in sections.items():
        if key in data:
            kwargs[key] = _build(cls, data.pop(key), key)
    if "schedule" in data:
        kwargs["schedule"] = [_build(Stage, s, f"schedule[{i}]") for i, s in enumerate(data.pop("schedule"))]
        if not kwargs["schedule"]:
            raise OptionsError("schedule: needs at least one stage")
    top = {f.name for f in dataclasses.fields(Options)} - set(sections) - {"schedule"}
    unknown = sorted(set(data) - top)
    if unknown:
        raise OptionsError(f"unknown option(s) {unknown}; allowed: {sorted(top | set(sections) | {'schedule'})}")
    options = Options(**kwargs, **data)
    for stage in options.schedule:
        if stage.scales > options.model.n_local:
            raise OptionsError(f"schedule: a stage uses {stage.scales} scales, model.n_local is {options.model.n_local}")
        if stage.n_frames < 2:
            raise OptionsError("schedule: n_frames must be >= 2 (one generated frame after the history)")
    if options.train.precision not in ("fp32", "bf16", "fp16"):
        raise OptionsError(f"train.precision: expected fp32, bf16 or fp16, got {options.train.precision!r}")
    if options.train.first_frame not in ("real", "zero", "image"):
        raise OptionsError(f"train.first_frame: expected 'real', 'zero' or 'image', got {options.train.first_frame!r}")
    return options


def load(path: str | Path) -> Options:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise OptionsError(f"{path}: cannot read options ({err})") from None
    try:
        return from_dict(data)
    except (OptionsError, TypeError) as err:
        raise OptionsError(f"{path}: {err}") from None


def to_dict(options: Options) -> dict:
    return dataclasses.asdict(options)
