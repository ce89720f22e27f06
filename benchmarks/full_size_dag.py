"""The DAG at full Cityscapes size: plan it with Snakemake and count its jobs (issue: beyond one machine).

    python benchmarks/full_size_dag.py [--root /tmp/cityscapes_tree]

Writes a Cityscapes-shaped tree of tiny placeholder PNGs (the real file naming): 2,975 train and
500 val snippets of 30 frames, frame 19 annotated (gtFine labelIds and instanceIds), spread over
18 and 3 cities; and the three demo videos (599, 1,100 and 1,200 frames). Then it times
``snakemake -n`` for results/cityscapes/fid.json (with a frame_by_frame and a vid2vid run), locally
and with the slurm profile, and results/cityscapes_long/cache/index.json. It prints the wall time,
the planning's peak memory and the job count of each rule, and the submissions that the slurm
profile makes (its group-components join side_by_side's jobs).
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
    if args.root is None:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
