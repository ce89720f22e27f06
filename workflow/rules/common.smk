# Shared by all rules: config loading + validation, dataset/shard lookups, wildcard constraints.
import functools
import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

from pipeline.core import config as config_mod
from pipeline import datasets as datasets_mod
from pipeline.core.cli import dataset_json
from pipeline.core.code_version import code_version  # params: code=... reruns a rule when its code changes
from pipeline.core.errors import InputError

# every dataset file adds datasets.<name>; command-line --config is applied again after each
for _dataset_file in config.get("dataset_files", []):
    workflow.configfile(_dataset_file)

# Snakemake parses nested --config values with YAML's BaseLoader (all strings): type them again.
# overwrite_config is the --configfile files' contents with --config over them.
_overrides = config_mod.typed(dict(workflow.config_settings.overwrite_config or {}))
config_mod.merge(config, _overrides)
# Where each key came from, in the order that sets it: the Snakefile's and dataset files, then
# --configfile, then --config (each later one wins).
_cli_files = [str(f) for f in workflow.config_settings.configfiles]
CONFIG_SOURCES = (
    [(str(f), config_mod.load_yaml(f)) for f in dict.fromkeys(map(str, workflow.configfiles)) if f not in _cli_files]
    + [(f, config_mod.load_yaml(f)) for f in _cli_files]
    + [("command line (--config)", config_mod.typed(dict(workflow.config_settings.config or {})))]
)
try:
    config_mod.validate(config, CONFIG_SOURCES)
except InputError as _err:
    raise WorkflowError(f"invalid configuration: {_err}") from None

RESULTS = config["results"]
FFMPEG_ARG = f"--ffmpeg {shlex.quote(config['ffmpeg'])}" if config.get("ffmpeg") else ""
CONDA_ENV = "../../envs/vid2vid.yaml"  # used with --software-deployment-method conda

# Jobs call `python -m pipeline.stages.<stage>`: let `python` be the interpreter running Snakemake (the
# project's venv), also when Snakemake was started by path without activating the venv.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


wildcard_constraints:
    ds=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    split=r"train|val|test|demoVideo",
    city=r"[A-Za-z0-9_-]+",
    run=r"[A-Za-z0-9][A-Za-z0-9_-]*",


@functools.cache
def dataset(ds):
    """The validated dataset, made once per Snakemake run (its typed settings are built once too)."""
    try:
        return config_mod.dataset(config, ds)
    except InputError as err:
        raise WorkflowError(str(err)) from None


def checkpoint_dataset(ds):
    """The dataset whose runs synthesize ``ds``: its checkpoints_from, else itself."""
    source = dataset(ds).settings.checkpoints_from or ds
    if source not in config["datasets"]:
        where = config_mod.blame(CONFIG_SOURCES, ("datasets", ds, "checkpoints_from"))
        raise WorkflowError(f"{where}: datasets.{ds}.checkpoints_from: no dataset named {source!r}")
    return source


_shard_cache = {}


def shards(ds):
    """{shard: [Sequence]} of a dataset (listed once per Snakemake run)."""
    if ds not in _shard_cache:
        try:
            _shard_cache[ds] = datasets_mod.shards(dataset(ds))
        except InputError as err:
            where = config_mod.blame(CONFIG_SOURCES, ("datasets", ds, "root"))
            raise WorkflowError(f"dataset {ds!r} (configured in {where}): {err}") from None
    return _shard_cache[ds]


def shard_sequences(wildcards):
    try:
        return shards(wildcards.ds)[wildcards.shard]
    except KeyError:
        raise WorkflowError(f"dataset {wildcards.ds!r} has no shard {wildcards.shard!r}") from None


def _braces(text):
    return text.replace("{", "{{").replace("}", "}}")


RESULTS_ARG = _braces(shlex.quote(RESULTS))


def stage_shell(cli, arguments="", *, dataset=True, results=None, gpu=False, python="python -m"):
    """The shell line of a rule: one stage CLI (``python -m <cli>``) with its log as stdout and stderr.

    dataset: pass --dataset and --dataset-json {params.dataset} (see dataset_arg); results: pass
    --results, the configured results folder (by default with the dataset); gpu: wait for a free GPU
    slot first (pipeline.tools.gpu_slot, resources.gpu)."""
    line = f"{python} {cli}"
    if gpu:
        line = f"python -m pipeline.tools.gpu_slot --need {{resources.gpu}} -- {line}"
    if dataset:
        line += " --dataset {wildcards.ds} --dataset-json {params.dataset}"
    if dataset if results is None else results:
        line += f" --results {RESULTS_ARG}"
    return f"{line} {arguments} > {{log}} 2>&1" if arguments else f"{line} > {{log}} 2>&1"


# what every data stage depends on; each stage adds its own section (so adding a run, or changing
# the flow mode, does not rerun the stages that do not use it)
DATASET_KEYS = (
    "adapter",
    "root",
    "task",
    "splits",
    "require_annotations",
    "val_videos",
    "split_file",
    "video_extensions",
    "sequences_per_job",
    "generate",
    "frames",
)


def dataset_arg(*sections):
    """A params function: --dataset-json for a stage CLI, the parts of datasets.<ds> it uses; a
    section may be one key of a section ("evaluate.split"), so other keys do not rerun the stage."""

    def arg(wildcards):
        cfg = dataset(wildcards.ds).cfg
        used = {k: cfg[k] for k in DATASET_KEYS + sections if k in cfg}
        for section, key in (s.split(".", 1) for s in sections if "." in s):
            if key in cfg.get(section, {}):
                used.setdefault(section, {})[key] = cfg[section][key]
        return shlex.quote(dataset_json(used))

    return arg


def compared_runs(ds):
    """The runs a dataset's evaluation may compare: its trained runs and its imported official
    models (each with the history its generator takes)."""
    imported = dataset(ds).cfg.get("imported") or {}
    if not imported:  # the importer (torch, the official networks) is loaded only where it is used
        return dataset(ds).settings.runs
    from pipeline.tools.import_official import MODELS

    return {
        **dataset(ds).settings.runs,
        **{run: {"model": {"n_frames": MODELS[spec["model"]]["model"].n_frames}} for run, spec in imported.items()},
    }


def evaluate_methods(wildcards, key="methods"):
    """The runs compared in results/<ds>/fid.json (evaluate.methods) or ablations.csv (evaluate.ablations)."""
    settings = dataset(wildcards.ds).settings
    methods, runs = getattr(settings.evaluate, key), compared_runs(wildcards.ds)
    derived = ["covst"] if "frame_by_frame" in runs else []  # COVST runs frame_by_frame's generator
    missing = [m for m in methods if m not in runs and m not in derived]
    if not methods or missing:
        where = config_mod.blame(CONFIG_SOURCES, ("datasets", wildcards.ds, "evaluate"))
        raise WorkflowError(
            f"{where}: datasets.{wildcards.ds}.evaluate.{key} must name runs of "
            f"datasets.{wildcards.ds}.runs or .imported, or covst beside a frame_by_frame run "
            f"(missing: {missing or 'none given'})"
        )
    return methods


def ablation_methods(wildcards):
    return evaluate_methods(wildcards, "ablations")


def preference_methods(wildcards):
    from pipeline.preference.study import compared_methods

    settings = dataset(wildcards.ds).settings
    compared = compared_methods(settings, settings.preference.studies)
    return [settings.preference.ours] + sorted({m for methods in compared.values() for m in methods})


def preference_answers(wildcards):
    """The answers' database once it exists (so new answers rerun the export); none before."""
    path = f"{RESULTS}/{wildcards.ds}/preference/answers.sqlite"
    return [path] if os.path.exists(path) else []


def shard_names(wildcards):
    """The shard's sequence names, for a stage CLI's --sequences."""
    return " ".join(s.name for s in shard_sequences(wildcards))


def frames_inputs(wildcards):
    """What a shard's frames are made from: rendered synthcity folders, or the video files."""
    ds = dataset(wildcards.ds)
    seqs = shard_sequences(wildcards)
    if ds.synthcity is not None:
        root = f"{RESULTS}/{wildcards.ds}/source"
        return [
            f"{root}/{kind}/{s.split}/{s.folder}"
            for s in seqs
            for kind in ("leftImg8bit_sequence", "gtFine", "synthcity_gt")
        ]
    if ds.sample_clips:
        from pipeline.datasets.clips import clip_file

        return [f"{RESULTS}/{wildcards.ds}/source/{clip_file(clip)}" for clip in ds.sample_clips]
    if ds.settings.adapter == "video":
        from pipeline.datasets.video_folder import video_path

        return [str(video_path(ds, s.name)) for s in seqs]
    return []  # a Cityscapes tree on disk: listed, not tracked file by file


def run_config(wildcards):
    """datasets.<ds>.runs.<run>, checked against the trainer's options (model/options.py)."""
    from model import options as train_options
    from pipeline.core import runs as runs_mod

    runs = dataset(wildcards.ds).settings.runs
    try:
        run = runs_mod.run_settings(runs, wildcards.run)
        train_options.from_dict(run)
    except (runs_mod.RunError, train_options.OptionsError, TypeError) as err:
        key = ("datasets", wildcards.ds, "runs") + ((wildcards.run,) if wildcards.run in runs else ())
        where = config_mod.blame(CONFIG_SOURCES, key)
        name = f"datasets.{wildcards.ds}.runs" + (f".{wildcards.run}" if wildcards.run in runs else "")
        raise WorkflowError(f"{where}: {name}: {err}") from None
    return run


def train_inputs(wildcards):
    """The cache, and the checkpoint of the run that makes the first frames in training, if one
    does (a run trained on real first frames needs it at synthesis only: synthesize_inputs)."""
    from pipeline.core import runs as runs_mod

    inputs = [f"{RESULTS}/{wildcards.ds}/cache/index.json"]
    source = runs_mod.first_frames_in_training(dataset(wildcards.ds).settings.runs, wildcards.run)
    if source:
        inputs.append(str(runs_mod.checkpoint(f"{RESULTS}/{wildcards.ds}", source)))
    return inputs


def imported_run(wildcards):
    """datasets.<ds>.imported.<run>: an official model and the folder its zips unpack into."""
    imported = dataset(wildcards.ds).cfg.get("imported") or {}
    if wildcards.run not in imported:
        raise WorkflowError(
            f"datasets.{wildcards.ds}.imported has no run {wildcards.run!r} (has {sorted(imported)}): "
            "name it there with its model and checkpoints folder (docs/official_models.md)"
        )
    return imported[wildcards.run]


def official_inputs(wildcards):
    """The official files an imported run is made of (a changed file imports it again)."""
    from pipeline.tools.import_official import source_files

    run = imported_run(wildcards)
    return [str(path) for path in source_files(run["model"], run["checkpoints"])]


def synthesize_inputs(wildcards):
    """The run's checkpoint, the cache, the frame manifest, and (``first``) the checkpoint of the
    single-image run that makes the first frames of a run trained on real ones."""
    from pipeline.core import runs as runs_mod

    source_ds = checkpoint_dataset(wildcards.ds)
    inputs = {
        "checkpoint": f"{RESULTS}/{source_ds}/checkpoints/{wildcards.run}/final.pt",
        "cache": f"{RESULTS}/{wildcards.ds}/cache/index.json",
        "manifest": f"{RESULTS}/{wildcards.ds}/frames/manifest.csv",  # each video at its sequence's frame rate
    }
    runs = dataset(source_ds).settings.runs
    source = runs_mod.first_frames_run(runs, wildcards.run)
    if source and not runs_mod.first_frames_in_training(runs, wildcards.run):
        inputs["first"] = str(runs_mod.checkpoint(f"{RESULTS}/{source_ds}", source))
    return inputs


def first_frames_arg(wildcards, input):
    return f"--first-frames-checkpoint {input.first}" if "first" in input.keys() else ""


def run_gpus(wildcards):
    return int(dataset(wildcards.ds).settings.runs.get(wildcards.run, {}).get("gpus", 1))


def rule_threads(rule):
    """A threads function: datasets.<ds>.threads.<rule> (default 2; Snakemake caps it at --cores;
    the rules without one run one thread a job)."""
    return lambda wildcards: getattr(dataset(wildcards.ds).settings.threads, rule)


def dataset_priority(wildcards):
    """datasets.<ds>.priority: which dataset's jobs go first when they compete for cores."""
    return int(dataset(wildcards.ds).settings.priority)


def run_priority(wildcards):
    """runs.<run>.priority, else the dataset's: which training job goes first."""
    run = dataset(wildcards.ds).settings.runs.get(wildcards.run, {})
    return int(run.get("priority", dataset_priority(wildcards)))


def run_options_arg(wildcards):
    return shlex.quote(json.dumps(run_config(wildcards), sort_keys=True))


def run_paths_arg(wildcards, input, output):
    from pipeline.core import runs as runs_mod

    paths = runs_mod.trainer_paths(
        dataset(wildcards.ds).settings.runs,
        wildcards.run,
        wildcards.ds,
        str(input[0]),
        os.path.dirname(str(output[0])),
        code_version("pipeline.stages.train"),
        str(input[1]) if len(input) > 1 else None,
    )
    return shlex.quote(json.dumps(paths, sort_keys=True))


RDZV_PORT = "${VID2VID_RDZV_PORT:-29500}"  # the first node's port for torchrun's c10d rendezvous
MAX_RESTARTS = 3  # torchrun restarts the workers of a run that lost one (they resume latest.pt)
# the rendezvous keeps its own store: shared with the workers' process group (torch's default), a
# node that rejoins after a loss waits on that round's keys until it times out (tests/test_multinode.py)
RDZV_OWN_STORE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"


def run_nodes(wildcards):
    return int(dataset(wildcards.ds).settings.runs.get(wildcards.run, {}).get("nodes", 1))


def runs_here():
    """Whether jobs run on this machine: the local executor, not inside a cluster job (where
    the job step runs its command with a local executor too); a dry run plans for any executor."""
    plugin = workflow.executor_plugin
    return plugin is not None and plugin.name == "local" and not workflow.remote_exec


def run_launcher(wildcards):
    """python -m; torchrun on one node for runs with several GPUs; for runs on several nodes, srun
    starts one torchrun agent per node, which meet in a c10d rendezvous on the first node."""
    gpus, nodes = run_gpus(wildcards), run_nodes(wildcards)
    if nodes > 1:
        if runs_here():
            raise WorkflowError(
                f"datasets.{wildcards.ds}.runs.{wildcards.run}.nodes is {nodes}: a run on several machines needs "
                "SLURM (snakemake --workflow-profile workflow/profiles/slurm ...); on one machine set nodes: 1 "
                "and gpus to its GPU count"
            )
        # the job's first node (the job step's environment keeps SLURM_JOB_ID, not the node list);
        # --overlap: the agents' step shares the nodes with the job step that runs this command
        first = '$(scontrol show hostnames "$(squeue -h -j "$SLURM_JOB_ID" -o %N)" | head -n 1)'
        return (
            f"srun --overlap --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1 env {RDZV_OWN_STORE} python -m torch.distributed.run --nnodes {nodes} "
            f"--nproc_per_node {gpus} --rdzv_backend c10d --rdzv_endpoint {first}:{RDZV_PORT} "
            f'--rdzv_id "$SLURM_JOB_ID" --max-restarts {MAX_RESTARTS} -m'
        )
    return f"python -m torch.distributed.run --standalone --nproc_per_node {gpus} -m" if gpus > 1 else "python -m"


def run_slurm_extra(wildcards):
    """sbatch options of a run on several nodes: one task (a torchrun agent) and ``gpus`` GPUs on
    each (the rule's resources nodes and tasks give the plugin's --nodes and --ntasks)."""
    return f"--ntasks-per-node=1 --gpus-per-node={run_gpus(wildcards)}" if run_nodes(wildcards) > 1 else ""


def stage_mode(ds, stage):
    return getattr(dataset(ds).settings, stage).mode


def model_gpus(stage):
    """resources: gpu=1 where the stage runs a network (every mode but given / dis)."""
    return lambda w: 0 if stage_mode(w.ds, stage) in ("given", "dis") else 1


def labels_inputs(wildcards):
    inputs = [f"{RESULTS}/{wildcards.ds}/frames/shards/{wildcards.shard}.csv"]
    if stage_mode(wildcards.ds, "labels") == "train":
        inputs.append(f"{RESULTS}/{wildcards.ds}/segmenter/model.pt")
    return inputs


def instances_inputs(wildcards):
    inputs = [f"{RESULTS}/{wildcards.ds}/frames/shards/{wildcards.shard}.csv"]
    mode = stage_mode(wildcards.ds, "instances")
    if mode != "given":  # masks are cut by the labels stage's maps
        inputs.append(f"{RESULTS}/{wildcards.ds}/labels/shards/{wildcards.shard}.json")
    if mode == "train":
        inputs.append(f"{RESULTS}/{wildcards.ds}/instance_model/model.pt")
    return inputs


def segmenter_inputs(wildcards):
    """The trained segmenter, where the evaluation's segmentation consistency uses it."""
    if stage_mode(wildcards.ds, "labels") == "train":
        return [f"{RESULTS}/{wildcards.ds}/segmenter/model.pt"]
    return []


def evaluator_inputs(wildcards):
    """The realism evaluator's trained DeepLabV3 (evaluate.evaluator: a dataset with labels mode train)."""
    name = dataset(wildcards.ds).settings.evaluate.evaluator
    if name is None:
        return []
    if name not in config["datasets"] or dataset(name).settings.labels.mode != "train":
        where = config_mod.blame(CONFIG_SOURCES, ("datasets", wildcards.ds, "evaluate", "evaluator"))
        raise WorkflowError(
            f"{where}: datasets.{wildcards.ds}.evaluate.evaluator: {name!r} must be a dataset whose labels mode "
            "is 'train' (its segmenter/model.pt is the evaluator)"
        )
    return [f"{RESULTS}/{name}/segmenter/model.pt"]


def evaluate_args(wildcards, input, key="methods"):
    """The evaluation's comparison settings: the baseline (fid.json: evaluate.baseline or the first
    method; ablations: the first of evaluate.ablations), the frames left out at the start (the
    first frames, made by the single-image generator: the longest history of the compared runs),
    the evaluator's checkpoint."""
    from pipeline.core import runs as runs_mod

    settings = dataset(wildcards.ds).settings
    methods = evaluate_methods(wildcards, key)
    baseline, skip_first = runs_mod.comparison(
        settings.evaluate, compared_runs(wildcards.ds), methods, key != "methods"
    )
    args = f"--baseline {baseline} --skip-first {skip_first}"
    if settings.task == "pose":
        args += f" --mediapipe-python {shlex.quote(config['mediapipe_python'])}"
    return args + (f" --evaluator {input.evaluator}" if input.evaluator else "")


def mediapipe_python(wildcards):
    """The MediaPipe environment's python (config 'mediapipe_python'), or a stop saying how to make it."""
    python = config["mediapipe_python"]
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise WorkflowError(
            f"pose mode 'mediapipe' of dataset {wildcards.ds} runs MediaPipe in its own environment, and "
            f"mediapipe_python ({python}) is not there: run `make setup-mediapipe`, or set mediapipe_python "
            "to that environment's python (--config mediapipe_python=/path/to/bin/python)"
        )
    return python


def pose_inputs(wildcards):
    inputs = [f"{RESULTS}/{wildcards.ds}/frames/shards/{wildcards.shard}.csv"]
    if stage_mode(wildcards.ds, "pose") == "mediapipe":
        inputs.append(f"{RESULTS}/{wildcards.ds}/keypoints/shards/{wildcards.shard}.json")
    return inputs


def source_stage(ds):
    """The stage whose maps condition the generator: None (labels + instances), sketch or pose."""
    from pipeline.datasets.conditions import SOURCE_STAGE

    return SOURCE_STAGE[dataset(ds).settings.task]


def source_frames_inputs(wildcards):
    """The frames of a shard as the trainer sees them: the frames stage's, or the face / pose crops."""
    stage = source_stage(wildcards.ds)
    if stage is None:
        return [f"{RESULTS}/{wildcards.ds}/frames/shards/{wildcards.shard}.csv"]
    return [
        f"{RESULTS}/{wildcards.ds}/frames/shards/{wildcards.shard}.csv",
        f"{RESULTS}/{wildcards.ds}/{stage}/shards/{wildcards.shard}.json",
    ]


def cache_inputs(wildcards):
    """What a cache shard packs: frames, labels, instances and flow; face / pose: their maps and flow."""
    root, shard = f"{RESULTS}/{wildcards.ds}", wildcards.shard
    stage = source_stage(wildcards.ds)
    maps = []
    if stage is None:  # street: labels, and instances unless mode none (no instance maps)
        maps = [f"{root}/labels/shards/{shard}.json"]
        if stage_mode(wildcards.ds, "instances") != "none":
            maps.append(f"{root}/instances/shards/{shard}.json")
    return source_frames_inputs(wildcards) + maps + [f"{root}/flow/shards/{shard}.json"]


def sketch_shards(wildcards):
    return [f"{RESULTS}/{wildcards.ds}/sketch/shards/{shard}.json" for shard in shards(wildcards.ds)]


def eval_sequences(wildcards):
    """The sequences of the evaluated split (evaluate.split)."""
    from pipeline import datasets as datasets_mod

    ds = dataset(wildcards.ds)
    return [s.name for s in datasets_mod.list_sequences(ds) if s.split == ds.settings.evaluate.split]


def sheet_frames_arg(wildcards):
    """--frames of evaluate.sheet_frames, or nothing (the stage takes frames the sequence has)."""
    frames = dataset(wildcards.ds).settings.evaluate.sheet_frames
    return "--frames " + " ".join(map(str, frames)) if frames else ""


def side_by_side_videos(wildcards):
    return [f"{RESULTS}/{wildcards.ds}/videos/{seq}.mp4" for seq in eval_sequences(wildcards)]


# future video prediction (workflow/rules/prediction.smk)
def prediction_settings(wildcards):
    return dataset(wildcards.ds).settings.prediction


def predict_inputs(wildcards):
    inputs = {
        "cache": f"{RESULTS}/{wildcards.ds}/cache/index.json",
        "manifest": f"{RESULTS}/{wildcards.ds}/frames/manifest.csv",
    }
    kind = {"vid2vid": "labels", "prednet": "prednet", "mcnet": "mcnet"}.get(wildcards.method)
    if kind:
        inputs["predictor"] = f"{RESULTS}/{wildcards.ds}/prediction/{kind}/final.pt"
    if wildcards.method == "vid2vid":
        run = prediction_settings(wildcards).render_run
        inputs["generator"] = f"{RESULTS}/{checkpoint_dataset(wildcards.ds)}/checkpoints/{run}/final.pt"
    return inputs


def predict_models(wildcards, input):
    """--predictor (and vid2vid's --generator) of a method that has a trained network."""
    models = f"--predictor {input.predictor}" if "predictor" in input.keys() else ""
    return models + (f" --generator {input.generator}" if "generator" in input.keys() else "")
