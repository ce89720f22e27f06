"""Configuration: load config/config.yaml and the per-dataset files, validate, fill defaults.

The schema is ``workflow/schemas/config.schema.yaml``. Errors name the file (or the command line)
that set the offending key, the key's dotted path and what was expected, e.g.::

    config/demo.yaml: datasets.demo.frames.size: expected an array of 2 integers >= 8, got [256]

The Snakefile and every stage CLI use this module, so a stage run by hand sees the same config
that Snakemake would give it.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import jsonschema
import yaml

from pipeline.core.errors import InputError

if TYPE_CHECKING:
    from pipeline.core.sections import DatasetSettings, GenerateSynthcitySettings

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
# a run's schema, generated from model/options.py (python -m pipeline.tools.run_schema)
RUN_SCHEMA_PATH = REPO / "workflow" / "schemas" / "run.schema.yaml"
DEFAULT_CONFIG = "config/config.yaml"


class ConfigError(InputError):
    """A config value is missing, unknown or of the wrong type."""


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "config file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(path, f"not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping at the top level, got {type(data).__name__}")
    return _unshared(data)


def _unshared(value: Any) -> Any:
    """A copy in which every mapping and list is its own object: YAML aliases (``*demo_train``) load
    as one shared dict, so merging an override into one run would change every run using it."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge (what Snakemake does with configfiles and --config)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def typed(value: Any) -> Any:
    """Re-read string leaves as YAML scalars ('2' -> 2, 'null' -> None), as a config file would."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if isinstance(parsed, (int, float, bool, type(None))) else value
    return value


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_VALIDATOR = _with_defaults(jsonschema.Draft202012Validator)


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    """The config schema, with the run schema as ``$defs/run`` (read once a process: 150 ms of YAML
    parsing; shared, so never modified)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    schema["$defs"]["run"] = yaml.safe_load(RUN_SCHEMA_PATH.read_text())
    return schema


def _unknown_keys(error: jsonschema.ValidationError) -> tuple:
    """The keys an ``additionalProperties`` error is about (to blame the file that has them)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ()
    return tuple(sorted(set(error.instance) - set(error.schema.get("properties", {}))))


def _describe(error: jsonschema.ValidationError) -> str:
    kind, expected, got = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"unknown key(s) {list(_unknown_keys(error)) or got}; allowed: {allowed}"
    if kind == "required":
        return error.message.replace("is a required property", "is missing (required)")
    if kind == "type":
        return f"expected {expected if isinstance(expected, str) else ' or '.join(expected)}, got {got!r}"
    if kind == "enum":
        return f"expected one of {expected}, got {got!r}"
    if kind in ("minItems", "maxItems") or (kind == "oneOf" and isinstance(got, list)):
        return f"expected an array of 2 integers >= 8 ([width, height]), got {got!r}"
    if kind == "oneOf":
        return f"expected {error.schema.get('description', 'one of the allowed forms')}, got {got!r}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"expected a number {'>=' if kind == 'minimum' else '>'} {expected}, got {got!r}"
    if kind == "propertyNames":
        return f"dataset names use letters, digits, '_' and '-', got {got!r}"
    return error.message


def _defines(source: dict, path: tuple) -> int:
    """How many leading keys of ``path`` the source mapping contains."""
    node, depth = source, 0
    for key in path:
        if isinstance(node, dict) and key in node:
            node, depth = node[key], depth + 1
        else:
            break
    return depth


def blame(sources: list[tuple[str, dict]], path: tuple) -> str:
    """The source that set the deepest part of ``path`` (later sources win ties)."""
    best, best_depth = sources[0][0] if sources else "config", -1
    for name, data in sources:
        depth = _defines(data or {}, path)
        if depth >= best_depth and depth > 0:
            best, best_depth = name, depth
    return best


# what NVIDIA's pretrained models read (pipeline/tools/import_official.py): the task and, for the face
# model, the official face input (pipeline/face/official_input.py)
OFFICIAL_INPUTS = {"label2city_2048": ("street", None), "label2city_1024_g1": ("street", None),
                   "edge2face_512": ("face", "official")}


def _check_imported(name: str, ds: dict, sources: list[tuple[str, dict]]) -> None:
    """An imported official model must read its own kind of input: refuse it at config time."""
    for run, spec in (ds.get("imported") or {}).items():
        task, style = OFFICIAL_INPUTS[spec["model"]]
        where = blame(sources, ("datasets", name, "imported", run, "model"))
        if ds.get("task", "street") != task:
            raise ConfigError(where, f"datasets.{name}.imported.{run}: {spec['model']} is a {task} model, the dataset's "
                                     f"task is {ds.get('task', 'street')}")
        if style and ds.get("sketch", {}).get("style") != style:
            raise ConfigError(where, f"datasets.{name}.imported.{run}: {spec['model']} reads the official face input: "
                                     f"set datasets.{name}.sketch.style: {style} (docs/official_models.md)")


def validate(config: dict, sources: list[tuple[str, dict]] | None = None) -> dict:
    """Validate ``config`` in place (filling defaults); ConfigError listing every problem."""
    sources = sources or []
    errors = sorted(_VALIDATOR(_schema()).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            path = tuple(err.absolute_path)
            key = ".".join(map(str, path)) or "(top level)"
            lines.append(f"{blame(sources, path + _unknown_keys(err)[:1])}: {key}: {_describe(err)}")
        first, *rest = lines
        where, _, problem = first.partition(": ")
        raise ConfigError(where, problem + "".join(f"\n  {line}" for line in rest))
    for name, ds in config["datasets"].items():
        synth = ds.get("generate", {}).get("synthcity")
        if synth and synth["annotated_frame"] >= synth["frames"]:
            where = blame(sources, ("datasets", name, "generate", "synthcity", "annotated_frame"))
            raise ConfigError(where, f"datasets.{name}.generate.synthcity.annotated_frame: expected < frames "
                                     f"({synth['frames']}), got {synth['annotated_frame']}")
        generated = bool(synth) or bool(ds.get("generate", {}).get("clips"))
        if generated and ds.get("root") is not None:
            where = blame(sources, ("datasets", name, "root"))
            raise ConfigError(where, f"datasets.{name}.root: a generated dataset is written to "
                                     f"<results>/{name}/source; remove 'root' (got {ds['root']!r})")
        if ds.get("root") is None and not generated:
            where = blame(sources, ("datasets", name))
            raise ConfigError(where, f"datasets.{name}.root is missing: expected the folder that holds the data")
        _resolve_runs(name, ds, sources)
        _check_imported(name, ds, sources)
        sketch = ds.get("sketch", {})
        if sketch.get("style") == "official" and sketch["size"] % 32:
            raise ConfigError(blame(sources, ("datasets", name, "sketch", "size")),
                              f"datasets.{name}.sketch.size: style official needs a multiple of 32 (the official "
                              f"code rounds its input size to one; 512 for edge2face_512), got {sketch['size']}")
    return config


def _resolve_runs(name: str, ds: dict, sources: list[tuple[str, dict]]) -> None:
    """Apply each run's ``base`` (pipeline/core/runs.py), so every consumer sees complete runs."""
    from pipeline.core import runs as runs_mod

    try:
        ds["runs"] = runs_mod.resolve(ds.get("runs", {}))
    except runs_mod.RunError as err:
        raise ConfigError(blame(sources, ("datasets", name, "runs", err.run, "base")), f"datasets.{name}.runs.{err}") from None


def load(files: Iterable[str | Path] = (DEFAULT_CONFIG,), overrides: dict | None = None) -> dict:
    """Load and merge config files, each followed at once by the ``dataset_files`` it lists, so a
    later file always wins over an earlier one and its dataset files; apply overrides, validate."""
    sources: list[tuple[str, dict]] = []
    config: dict[str, Any] = {}
    seen: set[str] = set()

    def add(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        data = load_yaml(name)
        sources.append((name, data))
        merge(config, data)
        for listed in data.get("dataset_files", []):
            add(str(listed))

    for name in files:
        add(str(name))
    if overrides:
        sources.append(("command line (--config)", overrides))
        merge(config, overrides)
    return validate(config, sources)


@dataclass(frozen=True)
class Dataset:
    """One dataset's resolved settings (``datasets.<name>`` with defaults) and where they live."""

    name: str
    cfg: dict
    results: Path

    @functools.cached_property
    def settings(self) -> DatasetSettings:
        """The typed, frozen view of ``cfg`` (pipeline/core/settings.py), built once:
        ``ds.settings.flow.mode``, ``ds.settings.labels.train.steps``. ``cfg`` itself is what a
        stage serialises (``--dataset-json``) and what its outputs' fingerprints hash."""
        from pipeline.core.settings import dataset_settings

        return dataset_settings(self.cfg)

    @property
    def synthcity(self) -> GenerateSynthcitySettings | None:
        """generate.synthcity, the settings the generator takes, or None."""
        return self.settings.generate.synthcity if self.settings.generate else None

    @property
    def sample_clips(self) -> list | None:
        """generate.clips: the real sample clips the dataset is made of, or None."""
        return self.settings.generate.clips if self.settings.generate else None

    @property
    def root(self) -> Path:
        if self.cfg.get("root"):
            return Path(self.cfg["root"])
        return self.results / "source"  # generated datasets live next to their results

    @property
    def config_key(self) -> str:
        return f"datasets.{self.name}"


def dataset(config: dict, name: str) -> Dataset:
    if name not in config["datasets"]:
        known = sorted(config["datasets"])
        raise ConfigError("config", f"no dataset named {name!r}; known datasets: {known} "
                                    f"(each is defined by a config/<name>.yaml listed in dataset_files)")
    return Dataset(name=name, cfg=config["datasets"][name], results=Path(config["results"]) / name)
