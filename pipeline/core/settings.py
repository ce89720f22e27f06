"""The typed config: every object section of the config schema (workflow/schemas/config.schema.yaml,
the one source of keys, types, defaults and descriptions) as a frozen dataclass, built once when a
dataset is loaded (:attr:`pipeline.core.config.Dataset.settings`).

    ds.settings.flow.mode            # 'given', 'dis', 'raft_large', 'ptlflow:flownet2', ...
    ds.settings.labels.train.steps   # the segmenter's training steps
    ds.settings.frames.size          # [width, height] or None

The classes (``FlowSettings``, ``LabelsTrainSettings``, ...; one per section, the schema's
properties as fields in its order) live in pipeline/core/sections.py, generated from the schema by
``python -m pipeline.tools.config_sections`` so that editors complete them; a test checks it is
current. A section the config leaves out that has no default is None (``generate``,
``generate.synthcity``). Mappings keyed by the user's names (``datasets``, ``runs``) stay mappings:
a run's options are typed by model/options.py. The validated dict (``Dataset.cfg``) stays what the
stages serialise (``--dataset-json``) and what their outputs' fingerprints hash.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.core import sections


def _sections():
    """pipeline/core/sections.py, imported when first used (its generator imports this module)."""
    return importlib.import_module("pipeline.core.sections")


def resolve(schema: dict, node: dict) -> dict:
    """The node with its $ref followed (sibling keys such as default kept beside it)."""
    if "$ref" in node:
        target = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def is_section(node: dict) -> bool:
    return node.get("type") == "object" and "properties" in node


def class_name(path: tuple[str, ...]) -> str:
    """``DatasetSettings`` for a dataset, ``LabelsTrainSettings`` for its labels.train."""
    return "".join(part.title().replace("_", "") for part in path or ("dataset",)) + "Settings"


def _build(schema: dict, path: tuple[str, ...], node: dict, value: dict | None):
    if value is None:
        return None
    cls = getattr(_sections(), class_name(path))
    values = {}
    for field in dataclasses.fields(cls):
        child = resolve(schema, node["properties"][field.name])
        given = value.get(field.name)
        values[field.name] = _build(schema, path + (field.name,), child, given) if is_section(child) else given
    return cls(**values)


def dataset_settings(cfg: dict) -> sections.DatasetSettings:
    """The frozen ``DatasetSettings`` of a validated ``datasets.<name>`` mapping (defaults filled)."""
    from pipeline.core.config import _schema

    schema = _schema()
    return _build(schema, (), schema["$defs"]["dataset"], cfg)


def _section_node(schema: dict, path: tuple[str, ...]) -> dict:
    node = schema["$defs"]["dataset"]
    for key in path:
        node = resolve(schema, node["properties"][key])
    return node


def section_settings(path: tuple[str, ...], value: dict):
    """One section built from a mapping of its own, validated with the schema's defaults filled:
    ``section_settings(("generate", "synthcity"), {"train": 2, "val": 1})`` (for code that
    renders or reads data without a whole dataset config: benchmarks, tests)."""
    import copy

    import jsonschema

    from pipeline.core.config import _VALIDATOR, _schema

    schema = _schema()
    node = _section_node(schema, path)
    value = copy.deepcopy(value)
    try:
        _VALIDATOR({**node, "$defs": schema["$defs"]}).validate(value)
    except jsonschema.ValidationError as err:
        raise ValueError(f"datasets.<name>.{'.'.join(path)}: {err.message}") from None
    return _build(schema, path, node, value)


def section_class(*path: str) -> type:
    """The dataclass of a section of a dataset, e.g. ``section_class("labels", "train")``."""
    return getattr(_sections(), class_name(path))
