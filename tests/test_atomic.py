"""Outputs are complete or absent: atomic folders and files, manifest merging."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.core.atomic import atomic_dir, atomic_file
from pipeline.core.errors import InputError
from pipeline.datasets import manifest


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
