"""The Apolloscape adapter on small trees written here: sequences per record and camera, the
paper's half-and-half split, class ids mapped to Cityscapes labelIds, frames -> labels -> flow ->
cache, and malformed trees named."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipeline import datasets
from pipeline.core.cache_format import read_header
from pipeline.core.errors import InputError
from pipeline.core.images import read_map
from pipeline.datasets import apolloscape
from pipeline.stages import cache, flow, frames, labels
from tests.conftest import make_dataset
from tests.test_workflow import job_counts, snakemake, workdir  # noqa: F401 (fixture)

SKY, ROAD, CAR = 17, 49, 33  # Apolloscape class ids


def write_tree(root, cameras=(("Record001", 5), ("Record001", 6), ("Record002", 5)), frames_each=4, road="road02_seg"):
    """Colour images and label images in Apolloscape's layout: sky on top, road below, a car that moves."""
    rng = np.random.default_rng(0)
    for record, camera in cameras:
        images = root / road / "ColorImage" / record / f"Camera {camera}"
        label_dir = root / road / "Label" / record / f"Camera {camera}"
        images.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        for i in range(frames_each):
            stem = f"170927_0638{i:05d}_Camera_{camera}"
            label = np.full((64, 80), ROAD, np.uint8)
            label[:24] = SKY
            label[30:50, 10 + 4 * i : 30 + 4 * i] = CAR
            image = np.stack([label * 3, 255 - label, rng.integers(0, 40, label.shape)], -1).astype(np.uint8)
            cv2.imwrite(str(images / f"{stem}.jpg"), image)
            cv2.imwrite(str(label_dir / f"{stem}_bin.png"), label)
    return root


def _dataset(tmp_path, root, **cfg):
    return make_dataset(tmp_path, "apollo", adapter="apolloscape", root=str(root), frames={"size": [64, 32]},
                        labels={"mode": "given"}, instances={"mode": "none"}, flow={"mode": "dis"}, **cfg)


def test_sequences_per_record_and_camera_split_half_and_half(tmp_path):
    ds = _dataset(tmp_path, write_tree(tmp_path / "apollo"))
    seqs = datasets.list_sequences(ds)
    # a record's two cameras film the same scene: they share a split, and the records alternate
    assert [(s.name, s.split) for s in seqs] == [("road02_seg_Record001_Camera5", "train"),
                                                 ("road02_seg_Record001_Camera6", "train"),
                                                 ("road02_seg_Record002_Camera5", "val")]


def test_frames_labels_flow_and_cache_with_labelids_mapped(tmp_path, caplog):
    ds = _dataset(tmp_path, write_tree(tmp_path / "apollo"))
    with caplog.at_level("INFO", logger="pipeline.frames"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    assert "apollo (adapter apolloscape, " in caplog.text and "3 sequences (train 2, val 1); this job: 3" in caplog.text
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    for stage in (labels, flow):
        stage.main(args + ["--job-summary", str(tmp_path / f"{stage.__name__}.json")])
    mapped = read_map(ds.results / "labels" / "road02_seg_Record001_Camera5" / "000000.png", np.uint8)
    assert mapped.shape == (32, 64) and set(np.unique(mapped)) == {23, 7, 26}  # sky, road, car labelIds
    header = cache.pack(ds, None, tmp_path / "apollo.safetensors")
    assert [(s["name"], s["split"], s["frames"]) for s in header["sequences"]][:2] == [
        ("road02_seg_Record001_Camera5", "train", 4), ("road02_seg_Record001_Camera6", "train", 4)]
    assert read_header(tmp_path / "apollo.safetensors")["instance_maps"] is False


def test_every_apolloscape_class_maps_into_the_cityscapes_labelids():
    ids = np.array(sorted(apolloscape.APOLLO_TO_CITYSCAPES), np.uint8)
    assert len(ids) == 36 and apolloscape.to_label_ids(ids, "x").max() <= 33
    with pytest.raises(InputError, match=r"bin.png: label values \[200\] are not Apolloscape class ids"):
        apolloscape.to_label_ids(np.array([[17, 200]]), "a_bin.png")


def test_malformed_trees_are_named(tmp_path, capsys):
    (tmp_path / "empty" / "downloads").mkdir(parents=True)
    with pytest.raises(InputError, match=r"empty: no Apolloscape road folder .* found \['downloads'\]"):
        datasets.list_sequences(_dataset(tmp_path, tmp_path / "empty"))
    root = write_tree(tmp_path / "apollo", cameras=(("Record001", 5),))
    missing = root / "road02_seg" / "Label" / "Record001" / "Camera 5" / "170927_063800002_Camera_5_bin.png"
    missing.unlink()
    ds = _dataset(tmp_path, root)
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"170927_063800002_Camera_5_bin.png: missing: the label image of "):
        datasets.extract(ds, datasets.list_sequences(ds)[0], tmp_path / "out", None)
    bad = write_tree(tmp_path / "bad", cameras=(("Record001", 5),))
    label = bad / "road02_seg" / "Label" / "Record001" / "Camera 5" / "170927_063800000_Camera_5_bin.png"
    cv2.imwrite(str(label), np.full((64, 80), 200, np.uint8))  # not a class id
    ds = _dataset(tmp_path / "b", bad)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    with pytest.raises(SystemExit) as stop:
        labels.main(["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)])
    assert stop.value.code == 2
    assert f"{label}: label values [200] are not Apolloscape class ids" in capsys.readouterr().err


def test_the_dag_runs_an_apolloscape_tree(workdir, tmp_path):  # noqa: F811
    root = write_tree(tmp_path / "apollo")
    result = snakemake(workdir, "-n", "results/apolloscape/cache/index.json", "--config",
                       f'datasets={{"apolloscape": {{"root": "{root}"}}}}')
    assert result.returncode == 0, result.output
    counts = job_counts(result.output)
    assert {k: counts.get(k) for k in ("frames", "labels", "instances", "flow", "cache")} == {
        "frames": 1, "labels": 1, "instances": 1, "flow": 1, "cache": 1}, counts  # 3 sequences, jobs of 4
