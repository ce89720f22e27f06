"""The COVST-style baseline of the paper's Table 1 (Chen et al., "Coherent Online Video Style
Transfer", ICCV 2017, as vid2vid compares to it): the frame-by-frame pix2pixHD-style outputs made
temporally coherent by warping the previous *output* with the source video's optical flow and
keeping it wherever the flow is reliable (not occluded), the new frame elsewhere:

    y_t = c_t * warp(y_{t-1}, f_{t->t-1}) + (1 - c_t) * x_t

with x_t the frame-by-frame output, f the source backward flow and c its confidence (the
forward-backward check) from the cache. Unlike vid2vid nothing is learned about the flow: this is
the "post-hoc warping" baseline.

    python -m model.covst --frames results/demo/synth/frame_by_frame --cache results/demo/cache/index.json \
        --split val --output results/demo/synth/covst
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from model.data import read_header
from model.flow_ops import warp
from model.synthesize import Mp4Writer
from model.train import cache_shards

log = logging.getLogger("model.covst")


def blend_sequence(frames: list[np.ndarray], flow_backward: np.ndarray, confidence: np.ndarray) -> list[np.ndarray]:
    """COVST outputs for (T, H, W, 3) uint8 frames, backward flow (T-1, 2, H, W) (index t: t+1 -> t)
    and its confidence (T-1, H, W) in 0..1."""
    out = [frames[0]]
    for t in range(1, len(frames)):
        previous = torch.from_numpy(out[-1]).permute(2, 0, 1)[None].float()
        flow = torch.from_numpy(flow_backward[t - 1].astype(np.float32))[None]
        warped = warp(previous, flow)[0].permute(1, 2, 0).numpy()
        keep = confidence[t - 1].astype(np.float32)[..., None]
        out.append(np.clip(keep * warped + (1 - keep) * frames[t], 0, 255).round().astype(np.uint8))
    return out


def run(frames_dir: Path, cache: list[str], split: str, output: Path, fps: float = 17.0) -> list[Path]:
    from safetensors import safe_open

    written = []
    output.mkdir(parents=True, exist_ok=True)
    for shard_path in cache_shards(cache):
        header = read_header(shard_path)
        with safe_open(shard_path, framework="numpy") as shard:
            for seq in header["sequences"]:
                if seq["split"] != split:
                    continue
                name = seq["name"]
                files = sorted((frames_dir / name).glob("*.png"))
                if len(files) != seq["frames"]:
                    raise SystemExit(f"error: {frames_dir / name}: {len(files)} frames, expected {seq['frames']} "
                                     "(synthesize the frame-by-frame run first)")
                frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
                blended = blend_sequence(frames, shard.get_tensor(f"{name}/flow_backward"),
                                         shard.get_tensor(f"{name}/confidence_backward").astype(np.float32) / 255)
                tmp = output / f".{name}.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                mp4 = Mp4Writer(output / f"{name}.mp4", frames[0].shape[1], frames[0].shape[0], fps)
                for index, frame in enumerate(blended):
                    cv2.imwrite(str(tmp / f"{index:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                    mp4.write(frame)
                mp4.close()
                shutil.rmtree(output / name, ignore_errors=True)
                tmp.rename(output / name)
                written.append(output / f"{name}.mp4")
                log.info("%s: %d frames", name, len(blended))
    summary = output / ".synthesis.json.tmp"
    summary.write_text(json.dumps({"baseline": "covst", "from": str(frames_dir), "split": split,
                                   "sequences": [p.stem for p in written]}, indent=1))
    summary.replace(output / "synthesis.json")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.covst", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, required=True, help="the frame-by-frame run's synth/<run>/ folder")
    parser.add_argument("--cache", nargs="+", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--fps", type=float, default=17.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(args.frames, args.cache, args.split, args.output, args.fps)


if __name__ == "__main__":
    main()
