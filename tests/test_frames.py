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


# ---------------------------------------------------------------- damaged video: decode errors

DAMAGED_FRAMES = [9, 24, 39]


def _video_payloads(avi: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each video frame's data in an AVI file: the 00dc / 00db chunks of its movi list."""
    pos, payloads = avi.index(b"movi") + 4, []
    while pos + 8 <= len(avi) and avi[pos:pos + 4] != b"idx1":
        tag, size = avi[pos:pos + 4], int.from_bytes(avi[pos + 4:pos + 8], "little")
        if tag[2:] in (b"dc", b"db"):
            payloads.append((pos + 8, size))
        pos += 8 + size + (size & 1)
    return payloads


def _encode_avi(ffmpeg, source, out, codec: str):
    """The first 2 s of ``source`` at 160x68 (50 frames at 25 fps) in an AVI, a keyframe every 12."""
    subprocess.run([ffmpeg, "-v", "error", "-i", str(source), "-t", "2", "-vf", "scale=160:68", "-c:v", codec,
                    "-q:v", "3", "-g", "12", str(out)], check=True)
    return out


def _damage(avi, out, frames=DAMAGED_FRAMES):
    """A copy of ``avi`` with the middle third of the given frames' data overwritten by random bytes."""
    data = bytearray(avi.read_bytes())
    rng = np.random.default_rng(0)
    payloads = _video_payloads(bytes(data))
    assert len(payloads) == 50
    for frame in frames:
        offset, size = payloads[frame]
        start, end = offset + size // 3, offset + 2 * size // 3
        data[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def damaged_videos(tmp_path_factory, ffmpeg, bikes_clip):
    """{codec: (clean AVI, the same with frames 9, 24 and 39 damaged)} for MPEG-4 Part 2, whose
    decoder flags the frames it conceals errors in, and MJPEG, whose decoder only logs them."""
    tmp = tmp_path_factory.mktemp("damaged")
    videos = {}
    for codec in ("mpeg4", "mjpeg"):
        clean = _encode_avi(ffmpeg, bikes_clip, tmp / f"{codec}.avi", codec)
        videos[codec] = clean, _damage(clean, tmp / f"{codec}_damaged.avi")
    return videos


def _decoded_frames(ds, seq):
    return np.stack([read_rgb(path) for path in sorted((ds.results / "frames" / seq).glob("*.png"))]).astype(int)


def _frames_that_differ(ds, clean, damaged):
    """Frames of the damaged sequence that differ visibly from the clean one's."""
    a, b = _decoded_frames(ds, clean), _decoded_frames(ds, damaged)
    assert a.shape == b.shape
    return [i for i in range(len(a)) if np.abs(a[i] - b[i]).max() > 10]


def _stamp_summary(ds, seq):
    return json.loads((ds.results / "frames" / seq / "stage.json").read_text())["summary"]


@pytest.mark.parametrize("codec", ["mpeg4", "mjpeg"])
def test_damaged_video_warns_with_the_frame_numbers_and_a_clean_one_does_not(tmp_path, damaged_videos, codec,
                                                                            caplog):
    clean, damaged = damaged_videos[codec]
    root = tmp_path / "videos"
    root.mkdir()
    shutil.copy(clean, root / "clean.avi")
    shutil.copy(damaged, root / "damaged.avi")
    ds = make_dataset(tmp_path, "vids", adapter="video", root=str(root), frames={"max_decode_errors": 0.1})
    with caplog.at_level("WARNING"):
        table = frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    assert table.groupby("seq").size().tolist() == [50, 50]
    differ = _frames_that_differ(ds, "clean", "damaged")
    assert DAMAGED_FRAMES[0] in differ and set(DAMAGED_FRAMES) <= set(differ)  # the damage is real and visible
    summary = _stamp_summary(ds, "damaged")
    assert summary["decode_errors"] == 3 and summary["decode_error_frames"] == DAMAGED_FRAMES
    expected = "decode errors in 3 of 50 frames (6.0%): 9, 24, 39"
    assert len(summary["warnings"]) == 1 and expected in summary["warnings"][0]
    assert "datasets.vids.frames.max_decode_errors is 10.0%" in summary["warnings"][0]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("damaged: ffmpeg reports " + expected), warned
    clean_summary = _stamp_summary(ds, "clean")  # the clean video: nothing to report
    assert clean_summary["decode_errors"] == 0 and clean_summary["decode_error_frames"] == []
    assert "warnings" not in clean_summary
    caplog.clear()
    with caplog.at_level("WARNING"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)  # kept: the warning is logged again
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == warned


def test_decode_errors_are_numbered_as_the_written_frames_when_resampled(tmp_path, damaged_videos):
    clean, damaged = damaged_videos["mpeg4"]
    root = tmp_path / "videos"
    root.mkdir()
    shutil.copy(clean, root / "clean.avi")
    shutil.copy(damaged, root / "damaged.avi")
    ds = make_dataset(tmp_path, "vids", adapter="video", root=str(root),
                      frames={"fps": 10, "size": [80, 34], "max_decode_errors": 0.5})
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    differ = _frames_that_differ(ds, "clean", "damaged")
    starts = [i for i in differ if i - 1 not in differ]  # where each damage begins, 25 -> 10 fps
    assert _stamp_summary(ds, "damaged")["decode_error_frames"] == starts == [4, 10, 16]


def test_damaged_video_over_the_threshold_names_the_file_and_the_frames(tmp_path, damaged_videos, short_clip):
    ds = _video_dataset(tmp_path, ("a_good.mp4", short_clip), ("b_damaged.avi", damaged_videos["mpeg4"][1]))  # 5 fps
    assert ds.settings.frames.max_decode_errors == 0.01  # the default: 1 frame in 100
    with pytest.raises(InputError, match=r"b_damaged.avi: damaged: ffmpeg reports decode errors in 3 of 10 frames "
                                         r"\(30.0%\): 2, 5, 8 \(first: '.+'\); datasets.vids.frames.max_decode_errors "
                                         r"tolerates 1.0%"):
        frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    _assert_nothing_partial(ds, complete=["a_good"])
