"""Synthesis from a (tiny, briefly trained) checkpoint: frames, video, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import options as options_mod
from model.synthesis import Synthesizer, synthesize
from model.trainer import train
from pipeline.core.images import read_rgb
from pipeline.core.video import ffmpeg_exe, probe


def _tiny_options(shard, output):
    """A multimodal run with a local enhancer, two steps: every synthesis path, in seconds."""
    return options_mod.from_dict({
        "dataset": "demo", "cache": [str(shard)], "output": str(output),
        "model": {"ngf": 8, "n_downsample": 2, "n_blocks": 2, "feat_nc": 3, "n_local": 1},
        "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1}, "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": 1, "n_frames": 3, "scale": 0.5}, {"steps": 1, "n_frames": 3, "scales": 1}],
        "train": {"first_frame": "image"}})


@pytest.fixture(scope="module")
def checkpoint(small_cache, tmp_path_factory):
    _, shard = small_cache
    out = tmp_path_factory.mktemp("tiny")
    return train(_tiny_options(shard, out), device="cpu")


def test_synthesize_writes_every_frame_and_a_video(small_cache, checkpoint, tmp_path):
    _, shard = small_cache
    written = synthesize(checkpoint, [str(shard)], "val", tmp_path / "synth", device="cpu")
    assert [p.name for p in written] == ["synth001_000000.mp4"]
    frames = sorted((tmp_path / "synth" / "synth001_000000").glob("*.png"))
    assert len(frames) == 8 and read_rgb(frames[0]).shape == (128, 256, 3)
    info = probe(written[0], ffmpeg_exe())
    assert (info.width, info.height) == (256, 128) and abs(info.duration - 8 / 17) < 0.1
    assert not list((tmp_path / "synth").glob(".*tmp*"))  # no half-written outputs left


def test_multimodal_and_semantic_manipulation_options(small_cache, checkpoint):
    from safetensors.numpy import load_file

    _, shard = small_cache
    tensors = load_file(str(shard))
    labels, instances = tensors["synth001_000000/labels"][:4], tensors["synth001_000000/instances"][:4]
    synth = Synthesizer(torch.load(checkpoint, weights_only=False), torch.device("cpu"))

    def run(**kwargs):
        return np.stack(list(synth.frames(labels, instances, **kwargs))).astype(int)

    base = run(features_seed=0)
    assert np.array_equal(base, run(features_seed=0))  # deterministic
    assert np.abs(base - run(features_seed=1)).mean() > 0  # another appearance sample
    car = int(next(i for i in np.unique(instances) if i // 1000 == 26))
    assert np.abs(base - run(features_seed=0, resample={car})).mean() > 0  # one instance resampled
    trees = run(features_seed=0, remap={21: 11})  # semantic manipulation: vegetation -> building
    assert (labels == 21).any() and np.abs(base - trees).mean() > 0


def _truncated_copy(path, target):
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_a_truncated_final_checkpoint_names_the_file_and_the_remedy(small_cache, checkpoint, tmp_path, capsys):
    from pipeline.stages import synthesize as synthesize_stage

    _, shard = small_cache
    cut = _truncated_copy(checkpoint, tmp_path / "final.pt")
    with pytest.raises(SystemExit) as stop:
        synthesize_stage.main(["--checkpoint", str(cut), "--cache", str(shard), "--output", str(tmp_path / "s"),
                               "--device", "cpu"])
    assert stop.value.code == 2
    assert f"{cut}: is truncated or corrupt" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_truncated_latest_checkpoint_stops_the_resume_with_its_name(small_cache, checkpoint, tmp_path):
    from pipeline.core.errors import InputError

    _, shard = small_cache
    run = tmp_path / "run"
    run.mkdir()
    _truncated_copy(checkpoint.with_name("latest.pt"), run / "latest.pt")
    with pytest.raises(InputError, match=r"latest.pt: is truncated or corrupt .*delete it to train this run from the start"):
        train(_tiny_options(shard, run), resume=True, device="cpu")


def test_a_flipped_byte_in_a_checkpoint_is_caught_on_load(checkpoint, tmp_path):
    from pipeline.core.checkpoint_files import load_checkpoint
    from pipeline.core.errors import InputError

    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside a tensor's bytes: torch.load alone would load it
    flipped = tmp_path / "final.pt"
    flipped.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"final.pt: is corrupt \(record .* fails its CRC-32 check\); train it"):
        load_checkpoint(flipped, "train it", weights_only=False)
    assert load_checkpoint(checkpoint, "train it", weights_only=False)["step"] == 2


@pytest.mark.parametrize("stage", ["synthesize", "train"])
def test_a_full_disk_names_the_file_and_leaves_nothing_that_looks_complete(small_cache, checkpoint, tmp_path, stage):
    import json

    from tests.conftest import run_with_file_limit

    _, shard = small_cache
    if stage == "synthesize":  # PNG frames in a sequence folder, the video piped to ffmpeg
        output = tmp_path / "synth"
        args = ["--checkpoint", str(checkpoint), "--cache", str(shard), "--output", str(output), "--device", "cpu"]
        named = output / "synth001_000000.mp4"
    else:  # its first checkpoint: final.pt (a run this short reaches its end before checkpoint_every)
        output = tmp_path / "run"
        args = ["--options-json", json.dumps(options_mod.to_dict(_tiny_options(shard, output))), "--device", "cpu"]
        named = output / "final.pt"
    result = run_with_file_limit(4096, f"pipeline.stages.{stage}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"error: {named}: could not be written: the disk is full or a file-size limit" in result.stderr, \
        result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    left = {p.name for p in output.iterdir()}  # the trainer's run.json and tensorboard/ may stay
    assert not named.exists() and not {name for name in left if name.startswith(".")}, left
    assert not left & {"synth001_000000", "synthesis.json", "final.pt", "latest.pt"}, left


def test_videos_play_at_their_sequences_frame_rate_from_the_manifest(small_cache, checkpoint, tmp_path):
    """A 30 fps face clip's synthesis used to be written at 17 fps (slow motion)."""
    import pandas as pd

    from pipeline.datasets import manifest
    from pipeline.stages.synthesize import main

    _, shard = small_cache
    rows = [{**{c: "" for c in manifest.COLUMNS}, "dataset": "demo", "seq": "synth001_000000", "split": "val",
             "index": i, "timestamp": round(i / 30, 6), "width": 256, "height": 128, "annotated": False}
            for i in range(8)]
    path = tmp_path / "manifest.csv"
    manifest.write(pd.DataFrame(rows), path)
    assert manifest.frame_rates(path) == {"synth001_000000": 30.0}
    main(["--checkpoint", str(checkpoint), "--cache", str(shard), "--output", str(tmp_path / "synth"),
          "--device", "cpu", "--manifest", str(path)])
    info = probe(tmp_path / "synth" / "synth001_000000.mp4", ffmpeg_exe())
    assert info.fps == 30 and abs(info.duration - 8 / 30) < 0.05
