# Shared by all rules: config loading + validation, dataset/shard lookups, wildcard constraints.
import shlex
import sys

from snakemake.exceptions import WorkflowError

from pipeline import config as config_mod
from pipeline import datasets as datasets_mod
from pipeline.cli import dataset_json
from pipeline.errors import InputError

# every dataset file adds datasets.<name>; command-line --config is applied again after each
for _dataset_file in config.get("dataset_files", []):
    workflow.configfile(_dataset_file)

# Snakemake parses nested --config values with YAML's BaseLoader (all strings): type them again.
_overrides = config_mod.typed(dict(workflow.config_settings.overwrite_config or {}))
config_mod.merge(config, _overrides)
CONFIG_SOURCES = [(f, config_mod.load_yaml(f)) for f in dict.fromkeys(workflow.configfiles)] + [
    ("command line (--config)", _overrides)
]
try:
    config_mod.validate(config, CONFIG_SOURCES)
except InputError as _err:
    raise WorkflowError(f"invalid configuration: {_err}") from None

RESULTS = config["results"]
PY = shlex.quote(sys.executable)  # the interpreter running Snakemake, with the pipeline installed
FFMPEG = f"--ffmpeg {shlex.quote(config['ffmpeg'])}" if config.get("ffmpeg") else ""


wildcard_constraints:
    ds=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    split=r"train|val|test",
    city=r"[A-Za-z0-9_-]+",


def dataset(ds):
    try:
        return config_mod.dataset(config, ds)
    except InputError as err:
        raise WorkflowError(str(err)) from None


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


def dataset_arg(wildcards):
    """--dataset-json for a stage CLI: the validated datasets.<ds> mapping, shell-quoted."""
    return shlex.quote(dataset_json(dataset(wildcards.ds).cfg))


def shard_names(wildcards):
    """The shard's sequence names, for a stage CLI's --sequences."""
    return " ".join(s.name for s in shard_sequences(wildcards))
