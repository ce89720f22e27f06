"""The streaming writers and reader (a safetensors shard, .npz archives row by row): what they
write and read is what safetensors and numpy write and read whole."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open

from pipeline.core.arrays import NpzRows, save_npz
from pipeline.core.cache_format import tensor_checksum
from pipeline.core.errors import InputError
from pipeline.core.safetensors_stream import StreamWriter, room_for


def test_tensors_written_row_by_row_read_back_with_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"seq/frames": rng.integers(0, 255, (7, 4, 6, 3), dtype=np.uint8),
               "seq/instances": rng.integers(0, 60000, (7, 4, 6), dtype=np.uint16),
               "seq/flow": rng.standard_normal((6, 2, 4, 6)).astype(np.float16)}
    draft = {"vid2vid": '{"checksums": [4294967295, 4294967295, 4294967295]}'}
    path = tmp_path / "s.safetensors"
    with StreamWriter(path, {k: (v.shape, v.dtype) for k, v in tensors.items()}, room_for(draft)) as out:
        for row in range(7):  # interleaved, as the cache stage writes a frame of every tensor at a time
            out.write("seq/frames", row, tensors["seq/frames"][row])
            out.write("seq/instances", row, tensors["seq/instances"][row])
        out.write("seq/flow", 0, tensors["seq/flow"][:4])
        out.write("seq/flow", 4, tensors["seq/flow"][4:])
        metadata = {"vid2vid": str([out.checksums[k] for k in sorted(tensors)])}
        out.finish(metadata)
    with safe_open(str(path), "np") as f:
        assert f.metadata() == metadata
        for name, array in tensors.items():
            assert np.array_equal(f.get_tensor(name), array) and f.get_tensor(name).dtype == array.dtype
    assert out.checksums == {name: tensor_checksum(array) for name, array in tensors.items()}


def test_rows_out_of_order_or_missing_are_refused(tmp_path):
    spec = {"a": ((3, 2), np.uint8)}
    with pytest.raises(ValueError, match=r"a: rows 1..2 .* do not continue the 0 rows written"):
        with StreamWriter(tmp_path / "a.st", spec, 16) as out:
            out.write("a", 1, np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"tensors not written to the end: \['a'\]"):
        with StreamWriter(tmp_path / "b.st", spec, 16) as out:
            out.write("a", 0, np.zeros((2, 2), np.uint8))
            out.finish({})


def test_npz_rows_stream_what_numpy_reads_whole(tmp_path):
    flow = np.random.default_rng(1).standard_normal((9, 2, 3, 5)).astype(np.float16)
    save_npz(tmp_path / "f.npz", flow=flow)
    with NpzRows(tmp_path / "f.npz", "flow") as rows:
        assert rows.shape == (9, 2, 3, 5) and rows.dtype == np.float16
        chunks = list(rows.chunks(4))
    assert [start for start, _ in chunks] == [0, 4, 8]
    assert np.array_equal(np.concatenate([chunk for _, chunk in chunks]), np.load(tmp_path / "f.npz")["flow"])
    with pytest.raises(InputError, match=r"f.npz: missing arrays \['confidence'\] \(has \['flow'\]\)"):
        with NpzRows(tmp_path / "f.npz", "confidence"):
            pass


def test_an_npz_written_row_by_row_has_save_npzs_bytes(tmp_path):
    from pipeline.core.arrays import NpzRowWriter

    rng = np.random.default_rng(2)
    arrays = {"flow": rng.standard_normal((11, 2, 4, 6)).astype(np.float16),
              "confidence": rng.random((11, 1, 4, 6)).astype(np.float16)}
    with NpzRowWriter(tmp_path / "rows.npz", {k: (v.shape, v.dtype) for k, v in arrays.items()}, tmp_path / "s") as out:
        for start in range(0, 11, 4):
            for name, array in arrays.items():
                out.write(name, start, array[start : start + 4])
    save_npz(tmp_path / "whole.npz", **arrays)
    assert (tmp_path / "rows.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    assert not (tmp_path / "s").exists()  # the scratch arrays are gone
