"""The typed config: every object section of the config schema (workflow/schemas/config.schema.yaml,
the one source of keys, types, defaults and descriptions) as a frozen dataclass, built once when a
dataset is loaded (:attr:`pipeline.core.config.Dataset.settings`).

    ds.settings.flow.mode            # 'given', 'dis', 'raft_large', 'ptlflow:flownet2', ...
    ds.settings.labels.train.steps   # the segmenter's training steps
    ds.settings.frames.size          # [width, height] or None

The classes are made from the schema (``FlowSettings``, ``LabelsTrainSettings``, ...), one per
section, with the schema's properties as fields in its order; a section the config leaves out
that has no default is None (``generate``, ``generate.synthcity``). Mappings keyed by the user's
names (``datasets``, ``runs``) stay mappings: a run's options are typed by model/options.py. The
validated dict (``Dataset.cfg``) stays what the stages serialise (``--dataset-json``) and what
their outputs' fingerprints hash.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any


def _resolve(schema: dict, node: dict) -> dict:
    """The node with its $ref followed (sibling keys such as default kept beside it)."""
    if "$ref" in node:
        target = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _is_section(node: dict) -> bool:
    return node.get("type") == "object" and "properties" in node


def _class_name(path: tuple[str, ...]) -> str:
    """``DatasetSettings`` for a dataset, ``LabelsTrainSettings`` for its labels.train."""
    return "".join(part.title().replace("_", "") for part in path or ("dataset",)) + "Settings"


def _make_class(schema: dict, node: dict, path: tuple[str, ...]) -> type:
    fields = []
    for key, child in node["properties"].items():
        child = _resolve(schema, child)
        kind = _make_class(schema, child, path + (key,)) if _is_section(child) else Any
        fields.append((key, kind))
    doc = node.get("description") or f"The config section datasets.<name>{''.join('.' + p for p in path)}."
    cls = dataclasses.make_dataclass(_class_name(path), fields, frozen=True, namespace={"__doc__": doc})
    cls.__module__ = __name__
    return cls


def _build(schema: dict, cls: type, node: dict, value: dict | None):
    if value is None:
        return None
    values = {}
    for field in dataclasses.fields(cls):
        child = _resolve(schema, node["properties"][field.name])
        given = value.get(field.name)
        values[field.name] = _build(schema, field.type, child, given) if _is_section(child) else given
    return cls(**values)


@functools.lru_cache(maxsize=1)
def _dataset_class() -> tuple[dict, dict, type]:
    from pipeline.core.config import _schema

    schema = _schema()
    node = schema["$defs"]["dataset"]
    return schema, node, _make_class(schema, node, ())


def dataset_settings(cfg: dict):
    """The frozen ``DatasetSettings`` of a validated ``datasets.<name>`` mapping (defaults filled)."""
    schema, node, cls = _dataset_class()
    return _build(schema, cls, node, cfg)


def section_class(*path: str) -> type:
    """The dataclass of a section of a dataset, e.g. ``section_class("labels", "train")``."""
    cls = _dataset_class()[2]
    for key in path:
        cls = {f.name: f.type for f in dataclasses.fields(cls)}[key]
    return cls
