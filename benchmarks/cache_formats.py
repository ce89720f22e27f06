"""Cache format comparison: random clip reads from safetensors, .npy memmaps, zarr and PNG files.

    python benchmarks/cache_formats.py [--clips 200]

Reads 6-frame clips (frames, labels, instances, flow, confidence) at random positions of 4 synthcity
sequences (30 frames, 512x256), materialising every array, page cache warm (as in every epoch after
the first). This is the measurement behind the cache stage's choice of safetensors.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _table import print_table  # noqa: E402 (sibling module of the script)

from pipeline.core.arrays import load_npz, save_npz
from pipeline.core.images import read_map, read_rgb, write_map, write_rgb
from pipeline.datasets.synthcity.render import render_sequence
from pipeline.datasets.synthcity.scene import build_scene

KEYS = ("frames", "labels", "instances", "flow", "confidence")
N = 6


def sequences(count: int, width: int, height: int, length: int) -> dict[str, dict[str, np.ndarray]]:
    data = {}
    for seed in range(count):
        out = list(render_sequence(build_scene(seed, width, height, length)))
        data[f"s{seed}"] = {
            "frames": np.stack([o[0].rgb for o in out]),
            "labels": np.stack([o[0].label for o in out]),
            "instances": np.stack([o[0].instance.astype(np.uint16) for o in out]),
            "flow": np.stack([o[1] for o in out[:-1]]).astype(np.float16),
            "confidence": (np.stack([o[2] for o in out[:-1]]) * 255).astype(np.uint8),
        }
    return data


def writers(root: Path, data: dict) -> dict:
    import zarr
    from safetensors import safe_open
    from safetensors.numpy import save_file

    save_file({f"{s}/{k}": v for s, d in data.items() for k, v in d.items()}, str(root / "shard.safetensors"))
    shard = safe_open(str(root / "shard.safetensors"), framework="numpy")
    for s, d in data.items():
        (root / "npy" / s).mkdir(parents=True)
        for k, v in d.items():
            np.save(root / "npy" / s / f"{k}.npy", v)
    memmaps = {s: {k: np.load(root / "npy" / s / f"{k}.npy", mmap_mode="r") for k in KEYS} for s in data}
    group = zarr.open_group(str(root / "cache.zarr"), mode="w")
    for s, d in data.items():
        for k, v in d.items():
            group.create_array(f"{s}/{k}", data=v, chunks=(1,) + v.shape[1:], compressors=None)
    zarrs = {s: {k: group[f"{s}/{k}"] for k in KEYS} for s in data}
    for s, d in data.items():
        folder = root / "png" / s
        folder.mkdir(parents=True)
        for i in range(len(d["frames"])):
            write_rgb(folder / f"{i:06d}.png", d["frames"][i])
            write_map(folder / f"{i:06d}_labels.png", d["labels"][i])
            write_map(folder / f"{i:06d}_instances.png", d["instances"][i])
        save_npz(folder / "flow.npz", flow=d["flow"], confidence=d["confidence"])

    def png(s, i):
        folder = root / "png" / s
        for j in range(i, i + N):
            read_rgb(folder / f"{j:06d}.png")
            read_map(folder / f"{j:06d}_labels.png")
            read_map(folder / f"{j:06d}_instances.png", np.uint16)
        load_npz(folder / "flow.npz", ("flow", "confidence"))

    return {
        "safetensors (chosen)": (root / "shard.safetensors",
                                 lambda s, i: [np.array(shard.get_slice(f"{s}/{k}")[i : i + N]) for k in KEYS]),
        "npy memmap": (root / "npy", lambda s, i: [np.array(memmaps[s][k][i : i + N]) for k in KEYS]),
        "zarr v3, chunk per frame": (root / "cache.zarr", lambda s, i: [zarrs[s][k][i : i + N] for k in KEYS]),
        "png + npz (stage outputs)": (root / "png", png),
    }


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    count, width, height, length = 4, 512, 256, 30
    data = sequences(count, width, height, length)
    rng = np.random.default_rng(0)
    requests = [(f"s{rng.integers(count)}", int(rng.integers(0, length - N))) for _ in range(args.clips)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, read) in writers(Path(tmp), data).items():
            read(*requests[0])
            start = time.perf_counter()
            for request in requests:
                read(*request)
            elapsed = time.perf_counter() - start
            rows.append((name, len(requests) / elapsed, len(requests) * N / elapsed, size_of(path) / (count * length) / 1024))
    print_table(f"cache formats: random {N}-frame clips at {width}x{height}, all five arrays, one process",
                ["format", "clips/s", "frames/s", "KiB per frame"],
                [[name, f"{clips:.0f}", f"{frames:.0f}", f"{kib:.0f}"] for name, clips, frames, kib in rows])


if __name__ == "__main__":
    main()
