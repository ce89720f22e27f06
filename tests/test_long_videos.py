"""Cityscapes' long demo videos (leftImg8bit/demoVideo/, the paper's 600-1200-frame results): read
as one sequence per video, and synthesized in the DAG by another dataset's runs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import datasets
from pipeline.core.errors import InputError
from pipeline.core.images import write_rgb
from pipeline.datasets import synthcity
from pipeline.stages import frames
from tests.conftest import make_dataset, synth_cfg
from tests.test_workflow import job_counts, snakemake, workdir  # noqa: F401 (fixture)


def write_demo_videos(root, lengths=(7, 5)):
    """Frames in leftImg8bit/demoVideo/stuttgart_0k/, numbered from 1 as in the archive."""
    rng = np.random.default_rng(0)
    for k, length in enumerate(lengths):
        folder = root / "leftImg8bit" / "demoVideo" / f"stuttgart_{k:02d}"
        folder.mkdir(parents=True)
        for i in range(1, length + 1):
            write_rgb(folder / f"stuttgart_{k:02d}_000000_{i:06d}_leftImg8bit.png",
                      rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
    return root


def _long(tmp_path, root):
    return make_dataset(tmp_path, "long", adapter="cityscapes", root=str(root), splits=["demoVideo"],
                        require_annotations=False, frames={"size": [64, 32]})


def test_each_demo_video_is_one_long_sequence(tmp_path):
    ds = _long(tmp_path, write_demo_videos(tmp_path / "cityscapes"))
    seqs = datasets.list_sequences(ds)
    assert [(s.name, s.split) for s in seqs] == [("stuttgart_00_000000", "demoVideo"), ("stuttgart_01_000000", "demoVideo")]
    table = frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    assert table.groupby("seq").size().to_dict() == {"stuttgart_00_000000": 7, "stuttgart_01_000000": 5}
    assert not table.annotated.any()


def test_a_root_without_the_demo_videos_names_the_archive(tmp_path):
    (tmp_path / "cityscapes" / "leftImg8bit_sequence").mkdir(parents=True)
    with pytest.raises(InputError, match=r"cityscapes/leftImg8bit: missing: .* for split demoVideo \(unpack "
                                         r"leftImg8bit_demoVideo.zip into"):
        datasets.list_sequences(_long(tmp_path, tmp_path / "cityscapes"))


def test_the_long_videos_are_synthesized_by_the_other_datasets_runs(workdir, tmp_path):  # noqa: F811
    root = tmp_path / "cityscapes"
    cfg = synthcity.settings(**synth_cfg(train=1, val=1))
    for seq in synthcity.sequences(cfg):
        synthcity.write_sequence(root, seq, cfg)
    write_demo_videos(root)
    run = '{"vid2vid": {"schedule": [{"steps": 1, "n_frames": 4}], "discriminator": {"temporal_scales": 1}}}'
    modes = '"labels": {"mode": "given"}, "instances": {"mode": "given"}, "flow": {"mode": "dis"}'
    config = (f'datasets={{"cityscapes": {{"root": "{root}", "runs": {run}, {modes}}}, '
              f'"cityscapes_long": {{"root": "{root}", "instances": {{"mode": "none"}}, "flow": {{"mode": "dis"}}}}}}')
    result = snakemake(workdir, "-n", "-p", "results/cityscapes_long/synth/vid2vid/synthesis.json", "--config", config)
    assert result.returncode == 0, result.output
    counts = job_counts(result.output)
    # cityscapes: one shard of 2 sequences, its run trained; cityscapes_long: a shard per video, no instances
    assert (counts["train"], counts["synthesize"], counts["labels"], counts["instances"]) == (1, 1, 3, 1), counts
    assert "--checkpoint results/cityscapes/checkpoints/vid2vid/final.pt --cache results/cityscapes_long/cache/index.json " \
           "--split demoVideo" in result.output
