"""Stage 'frames' on tiny real data: synthcity in the Cityscapes layout, a real video clip, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb, write_rgb
from pipeline.datasets import manifest, synthcity
from pipeline.stages import frames
from tests.conftest import make_dataset, run_module, synth_cfg


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory):
    """A generated dataset (2 sequences x 8 frames, 128x64), rendered once for the module."""
    tmp = tmp_path_factory.mktemp("synth")
    ds = make_dataset(tmp, "demo", adapter="cityscapes", generate={"synthcity": synth_cfg()})
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    return ds


def test_cityscapes_layout_frames_and_manifest(synth_dataset):
    table = frames.run(synth_dataset, {"ffmpeg": None}, None, synth_dataset.results / "m.csv", force=False)
    assert list(table.seq.unique()) == ["synth000_000000", "synth001_000000"]
    assert list(table.split.unique()) == ["train", "val"]
    assert table.groupby("seq").size().tolist() == [8, 8]
    row = table[(table.seq == "synth000_000000") & (table["index"] == 5)].iloc[0]
    assert row.annotated and row.gt_label.endswith("synth000_000000_000005_gtFine_labelIds.png")
    assert table.annotated.sum() == 2  # one annotated frame per sequence, as in Cityscapes
    assert all(table.gt_label != "") and all(table.gt_flow.str.endswith("_flow.npz"))
    assert np.allclose(table[table.seq == "synth000_000000"].timestamp, np.arange(8) / 17, atol=1e-6)
    first = synth_dataset.results / row.path
    source = read_rgb(row.source)
    np.testing.assert_array_equal(read_rgb(first), source)  # same size: copied exactly
    saved = manifest.read(synth_dataset.results / "m.csv")
    assert saved.shape == table.shape and (saved.seq == table.seq).all()


def test_rerun_keeps_complete_sequences_and_settings_change_redoes_them(synth_dataset, tmp_path):
    seq_dir = synth_dataset.results / "frames" / "synth000_000000"
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    stamp = (seq_dir / "000000.png").stat().st_mtime_ns
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    assert (seq_dir / "000000.png").stat().st_mtime_ns == stamp  # kept
    smaller = make_dataset(tmp_path, "demo", adapter="cityscapes", generate={"synthcity": synth_cfg()},
                           frames={"size": [64, 48]})
    smaller = type(smaller)(smaller.name, smaller.cfg, synth_dataset.results)  # same folders
    table = frames.run(smaller, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    assert read_rgb(seq_dir / "000000.png").shape == (48, 64, 3)  # cover: scaled to 96x48, centre-cropped
    assert (table.width == 64).all() and (table.height == 48).all()
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=True)


def test_a_deleted_or_truncated_frame_is_made_again_not_called_complete(synth_dataset, caplog):
    """Outside testers deleted one frame PNG: the stage (even --force'd by Snakemake's --forcerun,
    which reruns the job, not the sequence) logged 'complete with these settings, kept'."""
    caplog.set_level("INFO", logger="pipeline")
    seq_dir = synth_dataset.results / "frames" / "synth000_000000"
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    whole = (seq_dir / "000003.png").read_bytes()
    (seq_dir / "000003.png").unlink()
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    assert (seq_dir / "000003.png").read_bytes() == whole
    assert "synth000_000000: made again: 000003.png is missing" in caplog.text
    (seq_dir / "000005.png").write_bytes((seq_dir / "000005.png").read_bytes()[:100])  # truncated
    frames.run(synth_dataset, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    assert read_rgb(seq_dir / "000005.png").shape == (64, 128, 3)
    assert "000005.png has 100 bytes" in caplog.text


def test_video_folder_real_clip(tmp_path, short_clip):
    root = tmp_path / "videos"
    (root / "street").mkdir(parents=True)
    shutil.copy(short_clip, root / "street" / "bikes.mp4")
    ds = make_dataset(tmp_path, "vids", adapter="video", root=str(root), val_videos=["street__bikes"],
                      frames={"size": [96, 48], "fps": 10})
    table = frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    assert list(table.seq.unique()) == ["street__bikes"] and (table.split == "val").all()
    assert 19 <= len(table) <= 21  # 2 s at 10 fps
    assert np.allclose(table.timestamp.diff().dropna(), 0.1)
    image = read_rgb(ds.results / table.path.iloc[3])
    assert image.shape == (48, 96, 3) and image.std() > 10  # real content, not a blank frame


def test_cli_runs_and_reports_bad_input_as_one_line(tmp_path, short_clip):
    root = tmp_path / "videos"
    root.mkdir()
    shutil.copy(short_clip, root / "good.mp4")
    ds_json = json.dumps({"adapter": "video", "root": str(root), "frames": {"size": [64, 32], "fps": 5}})
    ok = run_module("pipeline.stages.frames", "--dataset", "v", "--dataset-json", ds_json, "--results", str(tmp_path / "r"),
                    "--shard-manifest", str(tmp_path / "shard.csv"))
    assert ok.returncode == 0, ok.stderr
    assert manifest.read(tmp_path / "shard.csv").shape[0] == 10
    (root / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    bad = run_module("pipeline.stages.frames", "--dataset", "v", "--dataset-json", ds_json, "--results", str(tmp_path / "r"),
                     "--sequences", "bad")
    assert bad.returncode == 2
    assert "bad.mp4: ffmpeg cannot open it" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------- bad input, one test each

def _video_dataset(tmp_path, *files):
    root = tmp_path / "videos"
    root.mkdir(exist_ok=True)
    for name, data in files:
        (root / name).write_bytes(data) if isinstance(data, bytes) else shutil.copy(data, root / name)
    return make_dataset(tmp_path, "vids", adapter="video", root=str(root), frames={"size": [64, 32], "fps": 5})


def _assert_nothing_partial(ds, complete=()):
    frames_dir = ds.results / "frames"
    leftovers = [p.name for p in frames_dir.iterdir()] if frames_dir.exists() else []
    assert sorted(leftovers) == sorted(complete), leftovers  # no temp folders, no partial sequences
    for name in complete:
        assert (frames_dir / name / "stage.json").is_file() and (frames_dir / name / "manifest.csv").is_file()


def test_corrupt_video_names_the_file_and_keeps_finished_sequences(tmp_path, short_clip):
    ds = _video_dataset(tmp_path, ("a_good.mp4", short_clip), ("b_corrupt.mp4", b"not a video at all" * 100))
    with pytest.raises(InputError, match=r"b_corrupt.mp4: ffmpeg cannot open it"):
        frames.run(ds, {"ffmpeg": None}, None, tmp_path / "shard.csv", force=False)
    _assert_nothing_partial(ds, complete=["a_good"])
    assert not (tmp_path / "shard.csv").exists()


def test_truncated_video(tmp_path, short_clip, ffmpeg):
    data = short_clip.read_bytes()  # faststart: the header survives, the frames do not
    ds = _video_dataset(tmp_path, ("cut.mp4", data[: len(data) // 3]))
    with pytest.raises(InputError, match=r"cut.mp4: truncated or corrupt: decoded \d+ frames, its header promises"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    _assert_nothing_partial(ds)


def test_truncated_video_without_header(tmp_path, bikes_clip):
    data = bikes_clip.read_bytes()  # moov atom at the end: cut off
    ds = _video_dataset(tmp_path, ("half.mp4", data[: len(data) // 2]))
    with pytest.raises(InputError, match=r"half.mp4: ffmpeg cannot open it .*moov atom not found"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)


def test_zero_frame_video(tmp_path, ffmpeg):
    audio = tmp_path / "audio_only.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "anullsrc", "-t", "1", "-c:a", "aac", str(audio)],
                   check=True)
    ds = _video_dataset(tmp_path, ("silent.mp4", audio))
    with pytest.raises(InputError, match=r"silent.mp4: contains no video stream"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    empty = _video_dataset(tmp_path, ("empty.mp4", b""))
    with pytest.raises(InputError, match=r"empty.mp4: video file is empty"):
        frames.run(empty, {"ffmpeg": None}, ["empty"], None, force=False)


def _cityscapes_copy(synth_dataset, tmp_path):
    root = tmp_path / "cityscapes"
    shutil.copytree(synth_dataset.root, root)
    return root, make_dataset(tmp_path, "cs", adapter="cityscapes", root=str(root))


def test_unreadable_image(synth_dataset, tmp_path):
    root, ds = _cityscapes_copy(synth_dataset, tmp_path)
    broken = root / "leftImg8bit_sequence/val/synth001/synth001_000000_000003_leftImg8bit.png"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(InputError, match=r"synth001_000000_000003_leftImg8bit.png: cannot decode image"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    _assert_nothing_partial(ds, complete=["synth000_000000"])


def test_mixed_frame_sizes(synth_dataset, tmp_path):
    root, ds = _cityscapes_copy(synth_dataset, tmp_path)
    odd = root / "leftImg8bit_sequence/train/synth000/synth000_000000_000004_leftImg8bit.png"
    write_rgb(odd, np.zeros((50, 100, 3), np.uint8))
    with pytest.raises(InputError, match=r"000004_leftImg8bit.png: frame size 100x50 differs from the sequence's "
                                         r"first frame synth000_000000_000000_leftImg8bit.png \(128x64\)"):
        frames.run(ds, {"ffmpeg": None}, ["synth000_000000"], None, force=False)


def test_missing_frame_in_sequence(synth_dataset, tmp_path):
    root, ds = _cityscapes_copy(synth_dataset, tmp_path)
    (root / "leftImg8bit_sequence/train/synth000/synth000_000000_000006_leftImg8bit.png").unlink()
    with pytest.raises(InputError, match=r"synth000_000000 is missing frames \[6\]"):
        frames.run(ds, {"ffmpeg": None}, ["synth000_000000"], None, force=False)


def test_cityscapes_without_gtfine(synth_dataset, tmp_path):
    root, ds = _cityscapes_copy(synth_dataset, tmp_path)
    shutil.rmtree(root / "gtFine")
    with pytest.raises(InputError, match=r"cityscapes/gtFine: missing: the annotated frames \(gtFine/\)"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    relaxed = make_dataset(tmp_path, "cs", adapter="cityscapes", root=str(root), require_annotations=False)
    table = frames.run(relaxed, {"ffmpeg": None}, ["synth000_000000"], None, force=False)
    assert not table.annotated.any()


def test_data_root_that_does_not_exist(tmp_path):
    for adapter in ("cityscapes", "video"):
        ds = make_dataset(tmp_path, "x", adapter=adapter, root=str(tmp_path / "nowhere"))
        with pytest.raises(InputError, match=r"nowhere: data root does not exist \(datasets.x.root\)"):
            frames.run(ds, {"ffmpeg": None}, None, None, force=False)
