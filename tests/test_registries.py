"""Registries instead of string sniffing: flow modes (with the ``ptlflow:`` family), dataset
adapters, pretrained segmenters; each agrees with the config schema that validates its names."""

from __future__ import annotations

import re

import pytest

from pipeline.core import config as config_mod
from pipeline.core.errors import InputError
from pipeline.datasets import ADAPTERS, list_sequences
from pipeline.segmentation.mmseg_deeplabv3 import CHECKPOINT_DEPTHS
from pipeline.stages import flow
from tests.conftest import make_dataset, synth_cfg



def _dataset_schema() -> dict:
    """The schema of one datasets.<name> entry, each section's $ref resolved."""
    schema = config_mod._schema()

    def resolved(node: dict) -> dict:
        return schema["$defs"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node

    entry = resolved(schema["properties"]["datasets"]["additionalProperties"])
    return {key: resolved(value) for key, value in entry["properties"].items()}


def test_flow_modes_register_the_ptlflow_family_as_such():
    assert "ptlflow:flownet2" in flow.MODES and flow.MODES["ptlflow:raft"] is flow.learned
    assert flow.MODES["raft_small"] is flow.learned and flow.MODES["dis"] is not flow.learned
    for unknown in ("ptlflow:", "raft_huge", "flownet2", "PTLFLOW:raft"):
        assert unknown not in flow.MODES
        with pytest.raises(KeyError):
            flow.MODES[unknown]
    assert flow.MODES.names() == ["given", "dis", "raft_large", "raft_small", "ptlflow:<name>"]


def test_the_schema_accepts_exactly_the_registered_flow_modes():
    pattern = re.compile(_dataset_schema()["flow"]["properties"]["mode"]["pattern"])
    for mode in ("given", "dis", "raft_large", "raft_small", "ptlflow:flownet2", "ptlflow:raft", "nope", "ptlflow:"):
        assert bool(pattern.match(mode)) == (mode in flow.MODES), mode


def test_adapters_and_pretrained_segmenters_are_the_schema_enums():
    schema = _dataset_schema()
    assert schema["adapter"]["enum"] == list(ADAPTERS)
    assert schema["labels"]["properties"]["model"]["enum"] == list(CHECKPOINT_DEPTHS)


def test_a_segmenter_outside_the_registry_is_refused_by_name():
    from pipeline.segmentation import loaders

    loaders.load_pretrained.cache_clear()
    with pytest.raises(InputError, match=r"labels.model: 'deeplabv3_r152_custom' is not an mmseg DeepLabV3 "
                                         r"checkpoint .*known: deeplabv3_r50_cityscapes, deeplabv3_r101_cityscapes"):
        loaders.load_pretrained("deeplabv3_r152_custom", None)


def test_a_sequence_knows_its_folder_from_the_listing(tmp_path):
    ds = make_dataset(tmp_path, "s", adapter="cityscapes", generate={"synthcity": synth_cfg(train=2, val=1)})
    assert [(s.name, s.split, s.folder) for s in list_sequences(ds)] == [
        ("synth000_000000", "train", "synth000"), ("synth001_000000", "train", "synth001"),
        ("synth002_000000", "val", "synth002")]
    # a Cityscapes tree on disk: the city folder, whatever the sequence is called
    frames = tmp_path / "cs/leftImg8bit_sequence/val/bad_homburg"
    frames.mkdir(parents=True)
    (frames / "bad_homburg_000012_000019_leftImg8bit.png").write_bytes(b"")
    cs = make_dataset(tmp_path, "cs", adapter="cityscapes", root=str(tmp_path / "cs"), splits=["val"],
                      require_annotations=False)
    assert [(s.name, s.folder) for s in list_sequences(cs)] == [("bad_homburg_000012", "bad_homburg")]
