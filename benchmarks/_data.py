"""Shared by the benchmarks: a synthcity dataset run through the stages up to the cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.core import config as config_mod
from pipeline.datasets import synthcity
from pipeline.stages import cache, flow, frames, instances, labels


def build_cache(root: Path, width: int, height: int, sequences: int = 4, length: int = 30,
                seconds: dict | None = None) -> tuple[config_mod.Dataset, Path]:
    """Render ``sequences`` synthcity sequences at width x height, run every stage, pack one shard.
    ``seconds``, when given, receives each stage's wall time (render, frames, labels, ..., cache)."""
    seconds = {} if seconds is None else seconds
    clock = time.perf_counter()
    synth = {"seed": 0, "size": [width, height], "frames": length, "train": sequences, "val": 0,
             "annotated_frame": min(19, length - 1)}
    cfg = {"adapter": "cityscapes", "generate": {"synthcity": synth}, "frames": {"size": [width, height]}}
    config = config_mod.validate({"results": str(root), "datasets": {"bench": cfg}})
    ds = config_mod.dataset(config, "bench")
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    seconds["render"], clock = time.perf_counter() - clock, time.perf_counter()
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    seconds["frames"], clock = time.perf_counter() - clock, time.perf_counter()
    args = ["--dataset", "bench", "--dataset-json", json.dumps(ds.cfg), "--results", str(root)]
    for stage in (labels, instances, flow):
        stage.main(args)
        seconds[stage.__name__.rsplit(".", 1)[1]], clock = time.perf_counter() - clock, time.perf_counter()
    shard = ds.results / "cache" / "all.safetensors"
    cache.pack(ds, None, shard)
    seconds["cache"] = time.perf_counter() - clock
    return ds, shard
