"""Config loading and validation: defaults filled, every mistake named with its file and key."""

from __future__ import annotations

import pytest
import yaml

from pipeline.core import config as config_mod
from pipeline.core.config import ConfigError
from tests.conftest import REPO


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_repository_config_is_valid_and_filled_with_defaults(monkeypatch):
    monkeypatch.chdir(REPO)
    config = config_mod.load()
    assert {"demo", "cityscapes", "video", "face", "pose"} <= set(config["datasets"])
    demo = config_mod.dataset(config, "demo")
    assert demo.synthcity.frames == 30 and demo.synthcity.annotated_frame == 19
    assert demo.cfg["frames"]["resize"] == "cover"  # a default the file does not set
    assert str(demo.root) == "results/demo/source"
    assert config_mod.dataset(config, "cityscapes").cfg["sequences_per_job"] == 25


@pytest.mark.parametrize(
    "dataset, key, expected",
    [
        ({"adapter": "cityscapes", "root": "x", "frames": {"size": [256]}}, "datasets.bad.frames.size", "[width, height]"),
        ({"adapter": "cityscapes", "root": "x", "frames": {"size": "big"}}, "datasets.bad.frames.size", "got 'big'"),
        ({"adapter": "cityscapes", "root": "x", "sequence_per_job": 2}, "datasets.bad", "unknown key(s) ['sequence_per_job']"),
        ({"adapter": "youtube", "root": "x"}, "datasets.bad.adapter", "expected one of ['cityscapes', 'apolloscape', 'video', 'imaginaire']"),
        ({"root": "x"}, "datasets.bad", "'adapter' is missing"),
        ({"adapter": "video"}, "datasets.bad.root", "is missing"),
        ({"adapter": "cityscapes", "root": "x", "sequences_per_job": 0}, "datasets.bad.sequences_per_job", ">= 1"),
        ({"adapter": "video", "root": "x", "frames": {"max_decode_errors": 5}}, "datasets.bad.frames.max_decode_errors",
         "greater than the maximum of 1"),
        ({"adapter": "video", "root": "x", "sketch": {"max_face_shift": 0}}, "datasets.bad.sketch.max_face_shift",
         "expected a number > 0, got 0"),
        ({"adapter": "cityscapes", "generate": {"synthcity": {"frames": 10, "annotated_frame": 19}}},
         "annotated_frame", "expected < frames"),
        ({"adapter": "cityscapes", "root": "x", "generate": {"synthcity": {}}}, "datasets.bad.root", "remove 'root'"),
        ({"adapter": "cityscapes", "root": "x", "imported": {"official_f": {"model": "edge2face_512", "checkpoints": "c"}}},
         "datasets.bad.imported.official_f", "edge2face_512 is a face model, the dataset's task is street"),
        ({"adapter": "video", "root": "x", "task": "face",
          "imported": {"official_f": {"model": "edge2face_512", "checkpoints": "c"}}},
         "datasets.bad.imported.official_f", "set datasets.bad.sketch.style: official"),
        ({"adapter": "video", "root": "x", "task": "face",
          "imported": {"official_c": {"model": "label2city_2048", "checkpoints": "c"}}},
         "datasets.bad.imported.official_c", "label2city_2048 is a street model, the dataset's task is face"),
        ({"adapter": "video", "root": "x", "task": "face", "sketch": {"style": "official", "size": 100}},
         "datasets.bad.sketch.size", "style official needs a multiple of 32"),
    ],
)
def test_mistakes_name_file_key_and_expectation(tmp_path, dataset, key, expected):
    main = write(tmp_path / "config.yaml", {"results": "results", "dataset_files": [str(tmp_path / "bad.yaml")]})
    write(tmp_path / "bad.yaml", {"datasets": {"bad": dataset}})
    with pytest.raises(ConfigError) as info:
        config_mod.load([main])
    message = str(info.value)
    assert message.startswith(str(tmp_path / "bad.yaml")), message
    assert key in message and expected in message, message


def test_override_is_blamed_on_the_command_line(tmp_path):
    main = write(tmp_path / "config.yaml", {"datasets": {"v": {"adapter": "video", "root": "r"}}})
    with pytest.raises(ConfigError, match=r"command line \(--config\): datasets.v.frames.fps: expected a number > 0"):
        config_mod.load([main], overrides={"datasets": {"v": {"frames": {"fps": -3}}}})


def test_a_later_file_wins_over_the_dataset_files_of_an_earlier_one(monkeypatch, tmp_path):
    """Outside testers: ``--config config/config.yaml my.yaml`` merged the dataset files after
    my.yaml, so its ``root`` was dropped and ``steps: "ten"`` became 800 without a word; a
    top-level typo in my.yaml was blamed on config/config.yaml."""
    monkeypatch.chdir(REPO)
    mine = write(tmp_path / "my.yaml", {"datasets": {"cityscapes": {"root": "/data/mine"},
                                                     "demo": {"labels": {"train": {"steps": 7}}}}})
    config = config_mod.load([config_mod.DEFAULT_CONFIG, mine])
    assert config["datasets"]["cityscapes"]["root"] == "/data/mine"
    assert config["datasets"]["demo"]["labels"]["train"]["steps"] == 7
    write(mine, {"datasets": {"demo": {"labels": {"train": {"steps": "ten"}}}}})
    with pytest.raises(ConfigError, match=rf"^{mine}: datasets.demo.labels.train.steps: expected integer, got 'ten'"):
        config_mod.load([config_mod.DEFAULT_CONFIG, mine])
    write(mine, {"reslts": "elsewhere"})
    with pytest.raises(ConfigError, match=rf"^{mine}: \(top level\): unknown key\(s\) \['reslts'\]"):
        config_mod.load([config_mod.DEFAULT_CONFIG, mine])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml: config file does not exist"):
        config_mod.load([tmp_path / "nothere.yaml"])
    bad = tmp_path / "broken.yaml"
    bad.write_text("datasets: [unclosed")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        config_mod.load([bad])


def test_unknown_dataset_lists_the_known_ones(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=r"no dataset named 'kitti'; known datasets: \['apolloscape', 'cityscapes', 'cityscapes_long', 'demo'"):
        config_mod.dataset(config_mod.load(), "kitti")


def test_a_run_inherits_its_base_and_states_only_what_it_changes(tmp_path):
    runs = {"vid2vid": {"model": {"ngf": 16, "n_blocks": 6}, "schedule": [{"steps": 5, "n_frames": 4}],
                        "first_frames_from": "fbf"},
            "fbf": {"model": {"n_frames": 1}},
            "no_flow": {"base": "vid2vid", "model": {"use_flow": False}},
            "no_flow_short": {"base": "no_flow", "schedule": [{"steps": 1, "n_frames": 2}]}}
    path = write(tmp_path / "c.yaml", {"datasets": {"d": {"adapter": "video", "root": "x", "runs": runs}}})
    resolved = config_mod.load([path])["datasets"]["d"]["runs"]
    assert resolved["no_flow"] == {"model": {"ngf": 16, "n_blocks": 6, "use_flow": False}, "first_frames_from": "fbf",
                                   "schedule": [{"steps": 5, "n_frames": 4}]}
    assert resolved["no_flow_short"]["schedule"] == [{"steps": 1, "n_frames": 2}]  # lists are replaced, not merged
    assert resolved["no_flow_short"]["model"]["use_flow"] is False and "base" not in resolved["no_flow_short"]
    assert resolved["vid2vid"] == runs["vid2vid"]


@pytest.mark.parametrize("runs, expected", [
    ({"a": {"base": "missing"}}, "datasets.d.runs.a.base: 'missing' is not a run of this dataset"),
    ({"a": {"base": "b"}, "b": {"base": "a"}}, "a -> b -> a is a cycle"),
])
def test_a_wrong_base_names_its_file_and_run(tmp_path, runs, expected):
    path = write(tmp_path / "c.yaml", {"datasets": {"d": {"adapter": "video", "root": "x", "runs": runs}}})
    with pytest.raises(ConfigError, match=expected) as err:
        config_mod.load([path])
    assert str(path) in str(err.value)


def test_the_demo_ablations_are_vid2vid_with_one_part_removed(monkeypatch):
    monkeypatch.chdir(REPO)
    runs = config_mod.load()["datasets"]["demo"]["runs"]
    changes = {"no_fg": ("model", "foreground", False), "no_dv": ("discriminator", "video", False),
               "no_flow": ("model", "use_flow", False)}
    for run, (section, key, value) in changes.items():
        expected = {**runs["vid2vid"], section: {**runs["vid2vid"][section], key: value}}
        assert runs[run] == expected, run


def test_the_run_schema_is_generated_from_the_trainer_options():
    """workflow/schemas/run.schema.yaml is current: rerun `python -m pipeline.tools.run_schema` if not."""
    from pipeline.tools import run_schema

    assert config_mod.RUN_SCHEMA_PATH.read_text() == run_schema.render()


@pytest.mark.parametrize("run, key, expected", [
    ({"model": {"ngff": 3}}, "datasets.d.runs.r.model", "unknown key(s) ['ngff']"),
    ({"schedule": [{"n_frames": 3}]}, "datasets.d.runs.r.schedule.0", "'steps' is missing"),
    ({"train": {"precision": "fp8"}}, "datasets.d.runs.r.train.precision", "expected one of ['auto', 'fp32'"),
    ({"discriminator": {"ndf": "wide"}}, "datasets.d.runs.r.discriminator.ndf", "expected integer, got 'wide'"),
    ({"gpus": 0}, "datasets.d.runs.r.gpus", ">= 1"),
])
def test_run_options_are_validated_at_load_with_file_and_key(tmp_path, run, key, expected):
    path = write(tmp_path / "c.yaml", {"datasets": {"d": {"adapter": "video", "root": "x", "runs": {"r": run}}}})
    with pytest.raises(ConfigError) as err:
        config_mod.load([path])
    message = str(err.value)
    assert message.startswith(str(path)) and key in message and expected in message, message


def test_each_section_is_a_frozen_dataclass_built_once_at_load(monkeypatch):
    import dataclasses

    from pipeline.core.settings import section_class

    monkeypatch.chdir(REPO)
    demo = config_mod.dataset(config_mod.load(), "demo")
    settings = demo.settings
    assert settings is demo.settings  # built once
    assert type(settings).__name__ == "DatasetSettings" and type(settings.labels.train).__name__ == "LabelsTrainSettings"
    assert settings.flow.mode == "given" and settings.labels.train.steps == 800 and settings.frames.size == [256, 128]
    assert settings.generate.synthcity.frames == 30 and settings.evaluate.split == "val"  # a default
    assert settings.runs["no_dv"]["discriminator"]["video"] is False  # runs stay a mapping (model/options.py types them)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.flow.mode = "dis"
    schema = config_mod._schema()["$defs"]
    assert [f.name for f in dataclasses.fields(section_class("flow"))] == list(schema["flow_stage"]["properties"])
    assert [f.name for f in dataclasses.fields(section_class("labels", "train"))] == list(
        schema["segmenter_training"]["properties"])
    video = config_mod.dataset(config_mod.load(), "video").settings
    assert video.generate is None and video.adapter == "video"  # a section the config leaves out: None


def test_the_sections_module_is_generated_from_the_config_schema():
    """pipeline/core/sections.py is current: rerun `python -m pipeline.tools.config_sections` if not."""
    from pipeline.tools import config_sections

    assert config_sections.OUTPUT.read_text() == config_sections.render()


def _conforms(value, hint) -> bool:
    """Whether ``value`` is of the annotation ``hint`` (the kinds sections.py uses)."""
    import dataclasses
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, dict):
        return isinstance(value, origin)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return isinstance(value, hint) and all(_conforms(getattr(value, f), hints[f]) for f in hints)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def test_every_dataset_of_the_repo_configs_conforms_to_its_section_types(monkeypatch):
    import dataclasses

    from pipeline.core import sections

    monkeypatch.chdir(REPO)
    config = config_mod.load()
    for name in config["datasets"]:
        settings = config_mod.dataset(config, name).settings
        assert _conforms(settings, sections.DatasetSettings), name
    wrong = dataclasses.replace(settings, flow=dataclasses.replace(settings.flow, batch="4"))
    assert not _conforms(wrong, sections.DatasetSettings)  # the check can fail


def test_an_override_of_one_run_leaves_the_runs_sharing_its_yaml_anchor_alone(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("datasets:\n  d:\n    adapter: video\n    root: x\n    runs:\n"
                    "      a: {train: &shared {log_every: 10}}\n      b: {train: *shared}\n")
    config = config_mod.load([path], overrides={"datasets": {"d": {"runs": {"b": {"train": {"log_every": 7}}}}}})
    runs = config["datasets"]["d"]["runs"]
    assert runs["a"]["train"]["log_every"] == 10 and runs["b"]["train"]["log_every"] == 7


def test_the_official_models_are_named_alike_in_schema_config_and_importer():
    """Three places know NVIDIA's models: the config schema, the inputs each reads, the importer."""
    from pipeline.tools.import_official import MODELS

    schema = config_mod._schema()["$defs"]["dataset"]["properties"]["imported"]["additionalProperties"]
    assert set(schema["properties"]["model"]["enum"]) == set(config_mod.OFFICIAL_INPUTS) == set(MODELS)
