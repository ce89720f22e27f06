"""Outputs are complete or absent: atomic folders and files, manifest merging."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from pipeline.core.atomic import atomic_dir, atomic_file
from pipeline.core.errors import InputError
from pipeline.core.images import write_rgb
from pipeline.datasets import manifest
from tests.conftest import REPO, make_dataset, run_with_file_limit


def test_atomic_dir_appears_only_on_success(tmp_path):
    target = tmp_path / "seq"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "000000.png").write_bytes(b"x")
            raise RuntimeError("decoder died")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(target) as tmp:  # replaces the old complete folder as a whole
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_atomic_file_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def _rows(seq, n):
    return pd.DataFrame([{c: "" for c in manifest.COLUMNS} | {"seq": seq, "index": i, "dataset": "d"} for i in range(n)])


def test_manifest_concat_sorts_and_refuses_duplicates(tmp_path):
    manifest.write(_rows("b", 2), tmp_path / "b.csv")
    manifest.write(_rows("a", 3), tmp_path / "a.csv")
    merged = manifest.concat([tmp_path / "b.csv", tmp_path / "a.csv"])
    assert merged.seq.tolist() == ["a", "a", "a", "b", "b"]
    with pytest.raises(InputError, match=r"sequences \['a'\] appear in more than one shard manifest"):
        manifest.concat([tmp_path / "a.csv", tmp_path / "a.csv"])
    (tmp_path / "bad.csv").write_text("seq,index\nx,1\n")
    with pytest.raises(InputError, match=r"bad.csv: manifest lacks columns"):
        manifest.read(tmp_path / "bad.csv")


def _killed_while_writing(target) -> None:
    """A process that dies by SIGKILL inside atomic_dir(target), after writing a frame."""
    import subprocess
    import sys

    code = ("import os, signal, sys\n"
            "from pipeline.core.atomic import atomic_dir\n"
            "with atomic_dir(sys.argv[1]) as tmp:\n"
            "    (tmp / (sys.argv[2] + '_000000_000000_leftImg8bit.png')).write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(target), target.name], cwd=REPO)
    assert result.returncode == -9


def test_a_killed_writer_leaves_a_temporary_that_no_scanner_lists_and_a_rerun_removes(tmp_path):
    from pipeline.core.atomic import is_temporary
    from pipeline.datasets import list_sequences

    ds = make_dataset(tmp_path, "c", adapter="cityscapes", root=str(tmp_path / "root"), require_annotations=False)
    (ds.root / "leftImg8bit_sequence" / "train" / "aachen").mkdir(parents=True)
    write_rgb(ds.root / "leftImg8bit_sequence" / "train" / "aachen" / "aachen_000000_000000_leftImg8bit.png",
              np.zeros((8, 8, 3), np.uint8))
    killed = ds.root / "leftImg8bit_sequence" / "train" / "bremen"
    _killed_while_writing(killed)
    [stale] = [p for p in killed.parent.iterdir() if p.name != "aachen"]
    assert is_temporary(stale) and not killed.exists()
    assert [s.name for s in list_sequences(ds)] == ["aachen_000000"]  # not bremen_000000 from the temporary
    with atomic_dir(killed) as tmp:  # the rerun of the killed job
        (tmp / "bremen_000000_000000_leftImg8bit.png").write_bytes(b"x")
    assert sorted(p.name for p in killed.parent.iterdir()) == ["aachen", "bremen"]  # the stale one is gone


def test_a_temporary_of_a_live_writer_is_left_alone(tmp_path):
    from pipeline.core.atomic import remove_stale_temporaries

    target = tmp_path / "out"
    live = tmp_path / f".out.tmp-{os.getpid()}-0123abcd"
    live.mkdir()
    assert remove_stale_temporaries(target) == [] and live.is_dir()


def test_one_sequence_name_in_two_splits_is_refused(tmp_path):
    from pipeline.datasets import list_sequences

    ds = make_dataset(tmp_path, "c", adapter="cityscapes", root=str(tmp_path / "root"), require_annotations=False)
    for split in ("train", "val"):
        folder = ds.root / "leftImg8bit_sequence" / split / "aachen"
        folder.mkdir(parents=True)
        write_rgb(folder / "aachen_000000_000000_leftImg8bit.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"val/aachen: sequence aachen_000000 is also in .*train/aachen"):
        list_sequences(ds)


@pytest.mark.parametrize("stage", ["frames", "cache"])
def test_a_full_disk_names_the_file_and_leaves_nothing_that_looks_complete(small_cache, tmp_path, stage):
    import json

    ds, _ = small_cache
    if stage == "frames":  # PNG frames (OpenCV) into a sequence folder
        cfg = {"adapter": "cityscapes", "root": str(ds.root), "frames": {"size": [128, 64]}}  # resized: written
        args = ["--dataset", "full", "--dataset-json", json.dumps(cfg), "--results", str(tmp_path),
                "--sequences", "synth000_000000"]
        output = tmp_path / "full" / "frames" / "synth000_000000"
    else:  # a safetensors shard
        output = tmp_path / "all.safetensors"
        args = ["pack", "--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results",
                str(ds.results.parent), "--output", str(output)]
    result = run_with_file_limit(4096, f"pipeline.stages.{stage}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"error: {output}: could not be written: the disk is full or a file-size limit" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not output.exists() and not [p for p in output.parent.iterdir() if p.name.startswith(".")]
