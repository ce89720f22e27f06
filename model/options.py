"""Training options: one YAML/JSON mapping, defaults from the official 512x256 recipe where the
paper is silent, scaled down by config for CPU runs.

    model:       generator (model/generator.py GeneratorConfig), discriminators
    loss:        GAN mode and the weights of every term (the official code's: feature matching,
                 VGG, flow and warp terms 10)
    optim:       Adam (2e-4, betas 0.5/0.999), linear decay to 0 over the last decay_steps
                 (default: the second half of the schedule, as niter / niter_decay)
    schedule:    the spatio-temporally progressive stages: each has steps, n_frames (clip length,
                 growing), scales (active local enhancers, growing), the resize and crop, and
                 how many of its first steps train a newly added scale alone (niter_fix_global)
    train:       batch, temporal stride, truncated backprop window (1: previous frames detached,
                 as the official max_frames_backpropagate), how the first L frames are made,
                 the weight average (EMA) kept for synthesis, precision, speed options,
                 checkpoint / log / sample intervals, seed

A schedule in which a video discriminator could never run (its temporal scale needs more
generated frames than any stage's clips have) is refused; stages in which one cannot run are
listed by :func:`schedule_warnings`, which the trainer logs at start and writes into run.json.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from model.generator import GeneratorConfig
from pipeline.core.devices import PRECISIONS


@dataclass(frozen=True)
class DiscriminatorOptions:
    ndf: int = 64
    n_layers: int = 3
    num_scales: int = 2  # image scales of D_I and of each D_V
    temporal_scales: int = 2  # D_V's on frame strides 1, 3, ... (3**s)
    k_frames: int = 3  # K frames per D_V window
    norm: str = "instance"
    video: bool = True  # ablation "no D_V": False


@dataclass(frozen=True)
class LossOptions:
    gan: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_flow: float = 10.0  # Eq. 8: L1 to the ground-truth flow
    lambda_flow_warp: float = 10.0  # Eq. 8: the previous real frame warped by the estimated flow (lambda_T)
    lambda_output_warp: float = 10.0  # the output against the previous output warped by the true flow
    lambda_temporal: float = 1.0  # weight of D_V's GAN + feature-matching terms
    # the occlusion mask pulled toward 0 (reuse the warped frame) on confident pixels: the official
    # loss_W, which it applies only with --no_first_img, where G makes its own first frames from
    # zero history: train.first_frame 'zero' here (on the demo with first frames from
    # frame_by_frame it raised vid2vid's stand-in FID from 21.2 to 26.7 with bilinear warping)
    lambda_mask: float = 1.0
    raw_losses: bool = True  # D_I and VGG also on the hallucinated image h_t (the official code)
    vgg_weights: str | None = None  # path to vgg19 weights; else the registry's cache / download


@dataclass(frozen=True)
class OptimOptions:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_steps: int | None = None  # linear decay to 0 over the last decay_steps (None: the second half)


@dataclass(frozen=True)
class Stage:
    steps: int
    n_frames: int = 3
    scales: int = 0
    scale: float = 1.0  # resize of the cached frames at this stage (0.5: half resolution)
    crop: tuple[int, int] | None = None  # (width, height) after resizing; None = the whole frame
    new_scale_alone_steps: int = 0  # first steps of a stage that adds a scale: train that scale only


@dataclass(frozen=True)
class TrainOptions:
    batch_size: int = 1
    max_t_step: int = 1
    tbptt: int = 1  # detach the generated history every tbptt frames (1: always; 0: backprop through the clip)
    # frames 0..L-1, in training and synthesis alike: 'image' = a single-image generator (pix2pixHD)
    # trained beside the run; 'zero' = G from zero history; 'real' = the real frames (synthesis then
    # needs them: --first-frame real)
    first_frame: str = "image"
    # a trained single-image run's checkpoint (the frame_by_frame run's final.pt) whose generator makes
    # frames 0..L-1, frozen (the official --use_single_G): with 'image' in training and synthesis
    # (None: one trained beside G), with 'real' at synthesis only, training on the real first frames
    # as the official code does
    single_image_generator: str | None = None
    ema: float = 0.999  # decay of the average of G's weights that synthesis uses (0: none)
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto (bf16 where the device has it natively: pipeline/core/devices.py)
    channels_last: bool = False  # CUDA only (on the CPU its gradients are wrong in torch 2.14: Trainer)
    compile: bool = False
    grad_checkpoint: bool = False
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    sample_every: int = 100
    scale_augment: tuple[float, float] = (1.0, 1.0)
    flip: bool = True


@dataclass(frozen=True)
class Options:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorOptions = field(default_factory=DiscriminatorOptions)
    loss: LossOptions = field(default_factory=LossOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    # 7 frames: both temporal scales of D_V (frame strides 1 and 3) have a window
    schedule: list[Stage] = field(default_factory=lambda: [Stage(steps=1000, n_frames=7)])
    train: TrainOptions = field(default_factory=TrainOptions)
    dataset: str | None = None  # the cache header must name this dataset
    cache: list[str] = field(default_factory=list)  # shard files, or one index.json
    output: str = "checkpoints/run"
    code: str = ""  # version of the code that trains this run (the workflow sets it); part of resume's check

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.schedule)

    @property
    def decay_steps(self) -> int:
        decay = self.optim.decay_steps
        return self.total_steps // 2 if decay is None else decay

    def stage_start(self, index: int) -> int:
        return sum(stage.steps for stage in self.schedule[:index])

    def generated_frames(self, stage: Stage) -> int:
        """Frames of a stage's clips that the generators make (what D_I and D_V score)."""
        return stage.n_frames - (self.model.n_frames - 1 if self.train.first_frame == "real" else 0)

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
    try:
        return cls(**values)
    except ValueError as err:  # a config's own check (GeneratorConfig.__post_init__)
        raise OptionsError(f"{where}: {err}") from None


def temporal_span(k_frames: int, scale: int) -> int:
    """Frames one D_V window of temporal scale ``scale`` covers: K frames at stride K**scale."""
    return (k_frames - 1) * k_frames**scale + 1


def schedule_warnings(options: Options) -> list[str]:
    """The stages in which a video discriminator's temporal scale cannot run (too few frames)."""
    d = options.discriminator
    if not d.video:
        return []
    out = []
    for s in range(d.temporal_scales):
        span = temporal_span(d.k_frames, s)
        short = [i for i, st in enumerate(options.schedule) if options.generated_frames(st) < span]
        if short:
            out.append(f"D_V temporal scale {s} (frame stride {d.k_frames ** s}) needs {span} generated frames "
                       f"per clip: it does not run in schedule stage(s) {short}")
    return out


def _check_schedule(options: Options) -> None:
    d, g = options.discriminator, options.model
    if g.layout != "project":
        raise OptionsError(f"model.layout: {g.layout!r} is NVIDIA's layout, for imported checkpoints only "
                           "(datasets.<ds>.imported, docs/official_models.md); a trained run takes 'project'")
    previous_scales = 0
    for i, stage in enumerate(options.schedule):
        if stage.scales > g.n_local:
            raise OptionsError(f"schedule: a stage uses {stage.scales} scales, model.n_local is {g.n_local}")
        if stage.n_frames < 2:
            raise OptionsError("schedule: n_frames must be >= 2 (one generated frame after the history)")
        if options.generated_frames(stage) < 1:
            raise OptionsError(f"schedule[{i}]: n_frames {stage.n_frames} leaves no frame to generate after "
                               f"the {g.n_frames - 1} real first frames (train.first_frame: real)")
        if stage.new_scale_alone_steps and stage.scales <= previous_scales:
            raise OptionsError(f"schedule[{i}]: new_scale_alone_steps needs a stage that adds a scale "
                               f"(scales {stage.scales} after {previous_scales})")
        if stage.new_scale_alone_steps > stage.steps:
            raise OptionsError(f"schedule[{i}]: new_scale_alone_steps {stage.new_scale_alone_steps} > steps {stage.steps}")
        previous_scales = stage.scales
    if d.video:
        longest = max(options.generated_frames(st) for st in options.schedule)
        for s in range(d.temporal_scales):
            span = temporal_span(d.k_frames, s)
            if longest < span:
                raise OptionsError(
                    f"discriminator.temporal_scales {d.temporal_scales}: temporal scale {s} (K={d.k_frames} frames "
                    f"at stride {d.k_frames ** s}) needs clips of {span} generated frames, the longest stage "
                    f"generates {longest}; lengthen schedule n_frames or lower discriminator.temporal_scales")


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
    if options.train.first_frame not in FIRST_FRAMES:
        raise OptionsError(f"train.first_frame: expected 'real', 'zero' or 'image', got {options.train.first_frame!r}")
    if options.train.single_image_generator and options.train.first_frame not in ("image", "real"):
        raise OptionsError("train.single_image_generator makes the first frames: it needs train.first_frame image "
                           "(in training and synthesis) or real (real ones in training, its at synthesis)")
    if not 0 <= options.train.ema < 1:
        raise OptionsError(f"train.ema: expected a decay in [0, 1), got {options.train.ema!r}")
    if options.train.precision not in PRECISIONS:
        raise OptionsError(f"train.precision: expected one of {PRECISIONS}, got {options.train.precision!r}")
    _check_schedule(options)
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


FIRST_FRAMES = ("image", "zero", "real")


def _choices() -> dict[tuple[str, str], tuple]:
    """The enumerated string options (section, key) -> allowed values, as the schema lists them."""
    from model.blocks import NORMS
    from model.flow_ops import WARP_MODES
    from model.losses import GAN_MODES

    return {("train", "first_frame"): FIRST_FRAMES, ("train", "precision"): PRECISIONS,
            ("loss", "gan"): GAN_MODES, ("model", "warp_mode"): WARP_MODES, ("model", "norm"): NORMS, ("discriminator", "norm"): NORMS,
            ("model", "layout"): ("project",)}


def _type_schema(annotation) -> dict:
    """The JSON schema of one field's type annotation (int, float, bool, str, X | None, tuples,
    lists, nested option dataclasses)."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [_type_schema(a) for a in args if a is not type(None)]
        schema = inner[0] if len(inner) == 1 else {"anyOf": inner}
        if type(None) in args:
            if set(schema) == {"type"}:
                return {"type": [schema["type"], "null"]}
            return {"anyOf": [schema, {"type": "null"}]}
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type_schema(args[0])}
        return {"type": "array", "items": _type_schema(args[0]), "minItems": len(args), "maxItems": len(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if dataclasses.is_dataclass(annotation):
        return dataclass_schema(annotation)
    return {"type": {int: "integer", float: "number", bool: "boolean", str: "string"}[annotation]}


def dataclass_schema(cls, section: str | None = None) -> dict:
    """An options dataclass as a JSON schema object: every field optional (its default applies)
    unless it has none, unknown keys refused. No defaults are written (this module fills them)."""
    import typing

    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        schema = _type_schema(hints[f.name])
        choices = _choices().get((section, f.name))
        if choices:
            schema = {"enum": list(choices)}
        properties[f.name] = schema
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    return {**schema, "required": required} if required else schema


def json_schema(workflow_set: tuple[str, ...] = ()) -> dict:
    """The run options (:class:`Options`) as a JSON schema, without the keys in ``workflow_set``."""
    sections = {"model": GeneratorConfig, "discriminator": DiscriminatorOptions, "loss": LossOptions,
                "optim": OptimOptions, "train": TrainOptions}
    schema = dataclass_schema(Options)
    for name, cls in sections.items():
        schema["properties"][name] = dataclass_schema(cls, name)
    schema["properties"]["schedule"]["minItems"] = 1
    for key in workflow_set:
        schema["properties"].pop(key)
    return schema
