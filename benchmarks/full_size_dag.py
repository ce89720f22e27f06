"""The DAG at full Cityscapes size: plan it with Snakemake and count its jobs (issue: beyond one machine).

    python benchmarks/full_size_dag.py [--root /tmp/cityscapes_tree]

Writes a Cityscapes-shaped tree of tiny placeholder PNGs (the real file naming): 2,975 train and
500 val snippets of 30 frames, frame 19 annotated (gtFine labelIds and instanceIds), spread over
18 and 3 cities; and the three demo videos (599, 1,100 and 1,200 frames). Then it times
``snakemake -n`` for results/cityscapes/fid.json (with a frame_by_frame and a vid2vid run), locally
and with the slurm profile, and results/cityscapes_long/cache/index.json. It prints the wall time,
the planning's peak memory and the job count of each rule, and the submissions that the slurm
profile makes (its group-components join side_by_side's jobs).

Then the slice: the first shard (25 snippets, 750 frames) is given textured frames and a label and
instance map per frame, and Snakemake runs the cheap stages on it for real (frames at 64x32, labels
and instances ``given``, flow ``dis``, the cache pack): its wall time and each job's time from the
rules' benchmark files. ``--no-slice`` skips it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from _table import print_table  # noqa: E402 (sibling module of the script)

REPO = Path(__file__).resolve().parents[1]
SNIPPETS = {"train": (2975, 18), "val": (500, 3)}  # snippets, cities
DEMO_VIDEOS = (599, 1100, 1200)
RUNS = """datasets:
  cityscapes:
    root: {root}
    runs:
      frame_by_frame: {{model: {{n_frames: 1, use_history: false}}}}
      vid2vid: {{first_frames_from: frame_by_frame, train: {{first_frame: real}}, discriminator: {{temporal_scales: 1}}}}
    evaluate: {{methods: [frame_by_frame, vid2vid]}}
  cityscapes_long: {{root: {root}}}
"""


def write_tree(root: Path) -> int:
    """The placeholder tree; returns the number of frames."""
    frame = cv2.imencode(".png", np.zeros((4, 8, 3), np.uint8))[1].tobytes()
    label = cv2.imencode(".png", np.zeros((4, 8), np.uint8))[1].tobytes()
    frames = 0
    for split, (count, cities) in SNIPPETS.items():
        for i in range(count):
            city, seq = f"city{i % cities:02d}{split[0]}", i // cities
            folder = root / "leftImg8bit_sequence" / split / city
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(30):
                (folder / f"{city}_{seq:06d}_{f:06d}_leftImg8bit.png").write_bytes(frame)
            frames += 30
            annotations = root / "gtFine" / split / city
            annotations.mkdir(parents=True, exist_ok=True)
            for kind in ("labelIds", "instanceIds"):
                (annotations / f"{city}_{seq:06d}_000019_gtFine_{kind}.png").write_bytes(label)
    for k, length in enumerate(DEMO_VIDEOS):
        folder = root / "leftImg8bit" / "demoVideo" / f"stuttgart_{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(length):
            (folder / f"stuttgart_{k:02d}_000000_{f:06d}_leftImg8bit.png").write_bytes(frame)
        frames += length
    return frames


SLICE = """datasets:
  cityscapes:
    root: {root}
    frames: {{size: [64, 32]}}
    labels: {{mode: given}}
    instances: {{mode: given}}
    flow: {{mode: dis}}
"""


def slice_sequences(workdir: Path, shard: str) -> list:
    """The sequences of one shard of the full-size cityscapes dataset, as the workflow groups them."""
    from pipeline.core import config as config_mod
    from pipeline.datasets import shards

    here = Path.cwd()
    os.chdir(workdir)  # the config files name their dataset files relative to the workflow
    try:
        config = config_mod.load(["config/config.yaml", "slice.yaml"])
    finally:
        os.chdir(here)
    return shards(config_mod.dataset(config, "cityscapes"))[shard]


def write_slice(root: Path, sequences) -> int:
    """Textured frames (a street-like gradient and noise moving a pixel a frame) and a label and an
    instance map for every frame of ``sequences``; returns the number of frames."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (32, 160, 3), np.uint8), (3, 3), 0)
    labels = np.repeat(np.array([23, 11, 7], np.uint8), [10, 12, 10])[:, None].repeat(64, 1)  # sky, building, road
    instances = labels.astype(np.uint16)
    instances[20:28, 10:24] = 26 * 1000  # a car
    frames = 0
    for seq in sequences:
        city, number = seq.name.rsplit("_", 1)
        split = "train" if city.endswith("t") else "val"
        for f in range(30):
            stem = f"{city}_{number}_{f:06d}"
            cv2.imwrite(str(root / "leftImg8bit_sequence" / split / city / f"{stem}_leftImg8bit.png"),
                        texture[:, f:f + 64])
            cv2.imwrite(str(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"), labels)
            cv2.imwrite(str(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png"), instances)
            frames += 1
    return frames


def run_slice(workdir: Path, root: Path, shard: str = "part0000") -> None:
    """Run the cheap stages on one shard for real: wall time and each rule's benchmark seconds."""
    (workdir / "slice.yaml").write_text(SLICE.format(root=root))
    frames = write_slice(root, slice_sequences(workdir, shard))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = workdir / "slice.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        status = subprocess.call([sys.executable, "-m", "snakemake", f"results/cityscapes/cache/{shard}.safetensors",
                                  "--cores", "2", "--configfile", "slice.yaml"],
                                 cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit(log.read_text()[-4000:])
    rows = []
    for rule in ("frames", "labels", "instances", "flow", "cache"):
        tsv = workdir / "results" / "cityscapes" / "benchmarks" / rule / f"{shard}.tsv"
        job = float(tsv.read_text().splitlines()[1].split("\t")[0])
        rows.append([rule, f"{job:.1f}", f"{1000 * job / frames:.1f}"])
    cache = workdir / "results" / "cityscapes" / "cache" / f"{shard}.safetensors"
    print_table(f"The slice: {shard}, {frames} frames at 64x32, run for real ({seconds:.0f} s wall in all, "
                f"cache {cache.stat().st_size / 2**20:.1f} MiB)", ["rule", "job s", "ms/frame"], rows)


def plan(workdir: Path, target: str, *extra: str) -> tuple[float, float, dict[str, int], str]:
    """(seconds, peak MiB, jobs per rule, output) of ``snakemake -n`` in ``workdir``."""
    env = {**os.environ, "PATH": f"{REPO / 'tests' / 'fake_slurm'}:{os.environ['PATH']}",
           "FAKE_SLURM_DIR": str(workdir / "fake_slurm"), "PYTHONPATH": str(REPO)}
    log = workdir / "plan.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "snakemake", "-n", target, "--configfile", "full_size.yaml",
                                    *extra], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
    seconds = time.perf_counter() - start
    output = log.read_text()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(output[-4000:])
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.M)}
    return seconds, usage.ru_maxrss / 1024, counts, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="where to write the tree (default: a temporary folder)")
    parser.add_argument("--no-slice", action="store_true", help="plan only: do not run the slice")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="full_size_dag_"))
    root = args.root or scratch / "cityscapes"
    start = time.perf_counter()
    frames = write_tree(root)
    print(f"tree: {frames} frames under {root} in {time.perf_counter() - start:.1f} s")
    workdir = scratch / "work"
    workdir.mkdir()
    shutil.copy(REPO / "Snakefile", workdir)
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, workdir / folder)
    (workdir / "envs").mkdir()  # the rules' conda files (not the MediaPipe environment beside them)
    for conda_file in (REPO / "envs").glob("*.yaml"):
        shutil.copy(conda_file, workdir / "envs")
    (workdir / "full_size.yaml").write_text(RUNS.format(root=root))
    rows, submissions = [], None
    for name, target, extra in [
        ("cityscapes fid.json, local", "results/cityscapes/fid.json", ("--cores", "8")),
        ("cityscapes fid.json, slurm profile", "results/cityscapes/fid.json",
         ("--workflow-profile", "workflow/profiles/slurm")),
        ("cityscapes_long cache", "results/cityscapes_long/cache/index.json", ("--cores", "8")),
    ]:
        seconds, peak, counts, output = plan(workdir, target, *extra)
        if "slurm" in name:
            groups = len(re.findall(r"^\[.*\] Group job ", output, re.M))
            submissions = counts["total"] - counts.get("side_by_side", 0) + groups
        jobs = ", ".join(f"{rule} {n}" for rule, n in counts.items() if rule != "total")
        rows.append([name, f"{seconds:.1f}", f"{peak:.0f}", counts["total"], jobs])
    print_table("Planning the full-size DAG (snakemake -n)", ["target", "s", "peak MiB", "jobs", "per rule"], rows)
    print(f"\nthe slurm profile submits {submissions} jobs for cityscapes fid.json "
          "(side_by_side's 500 as groups of 50)")
    if not args.no_slice:
        run_slice(workdir, root)
    if args.root is None:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
