"""Street data with no instance maps (``instances: {mode: none}``, the official ``--no_instance``):
no instances stage in the DAG, a cache of labels alone that says so, a generator without the
instance-edge channel, trained and synthesized end to end."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from model import options as options_mod
from model.synthesis import synthesize
from model.trainer import Trainer, train
from pipeline.core.cache_format import CacheError, read_header
from pipeline.stages import instances
from tests.conftest import synthcity_cache
from tests.test_workflow import TINY_DEMO, job_counts, snakemake, workdir  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def no_instance_cache(tmp_path_factory):
    ds, shard = synthcity_cache(tmp_path_factory.mktemp("noinst"), "plain", [128, 64], instances={"mode": "none"})
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    return ds, args, shard


def _options(shard, output, **model):
    return options_mod.from_dict({
        "dataset": "plain", "cache": [str(shard)], "output": str(output),
        "model": {"label_nc": 34, "ngf": 8, "n_downsample": 2, "n_blocks": 2, **model},
        "discriminator": {"ndf": 8, "n_layers": 1, "num_scales": 1, "temporal_scales": 1}, "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": 2, "n_frames": 3}], "train": {"checkpoint_every": 2, "first_frame": "image"}})


def test_the_cache_holds_labels_alone_and_says_so(no_instance_cache):
    ds, args, shard = no_instance_cache
    header = read_header(shard)
    assert header["instance_maps"] is False and "instances" not in header["channels"]
    assert header["stage_modes"] == {"labels": "given", "flow": "given"}
    with safe_open(str(shard), "np") as f:
        assert not [key for key in f.keys() if key.endswith("/instances")] and "synth000_000000/labels" in f.keys()
    with pytest.raises(SystemExit) as stop:  # the stage itself says there is nothing to make
        instances.main(args)
    assert stop.value.code == 2


def test_a_generator_without_the_edge_channel_trains_and_synthesizes(no_instance_cache, tmp_path):
    _, _, shard = no_instance_cache
    trainer = Trainer(_options(shard, tmp_path / "probe"), torch.device("cpu"))
    inputs = trainer.to_inputs(trainer.load_batch(0, 0))
    assert inputs["semantic"].shape[2] == 34  # the one-hot labelIds, no instance edges
    final = train(_options(shard, tmp_path / "run"), device="cpu")
    written = synthesize(final, [str(shard)], "val", tmp_path / "synth", device="cpu")
    assert [p.name for p in written] == ["synth001_000000.mp4"]
    assert len(list((tmp_path / "synth" / "synth001_000000").glob("*.png"))) == 8


def test_options_that_need_instance_maps_name_what_to_set(no_instance_cache, tmp_path):
    _, _, shard = no_instance_cache
    with pytest.raises(CacheError, match=r"gives 34 input channels per frame \(34 one-hot labelIds, no instance "
                                         r"maps \(instances mode none\)\) but model.label_nc is 35; set model.label_nc: 34"):
        Trainer(_options(shard, tmp_path / "a", label_nc=35), torch.device("cpu")).dataset(0)
    with pytest.raises(options_mod.OptionsError, match=r"no instance maps .*set model.feat_nc: 0"):
        Trainer(_options(shard, tmp_path / "b", feat_nc=3), torch.device("cpu")).dataset(0)


def test_the_dag_has_no_instances_jobs(workdir):  # noqa: F811
    overrides = ["--config", 'datasets={"demo": {"instances": {"mode": "none"}}}']
    result = snakemake(workdir, "-n", "results/demo/cache/index.json", *TINY_DEMO, *overrides)
    assert result.returncode == 0, result.output
    counts = job_counts(result.output)
    assert "instances" not in counts and counts["cache"] >= 1 and counts["labels"] >= 1, counts

