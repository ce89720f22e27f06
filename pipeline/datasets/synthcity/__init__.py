"""synthcity: the embedded demo dataset, a procedurally rendered street-scene video dataset.

``scene.py`` lays out a street from a seed, ``render.py`` ray-casts RGB, labels, instances, depth
and exact forward flow, ``textures.py`` colours it. This module writes whole sequences to disk in
the Cityscapes layout, so the demo runs through the same Cityscapes adapter as the real data:

    leftImg8bit_sequence/{split}/{city}/{city}_000000_{frame:06d}_leftImg8bit.png   every frame
    gtFine/{split}/{city}/{city}_000000_{frame:06d}_gtFine_{labelIds,instanceIds}.png
                                                 the "annotated" frames: frame 19 as in Cityscapes,
                                                 plus every annotate_every-th frame if set
    synthcity_gt/{split}/{city}/                 full ground truth for evaluation:
        {city}_000000_{frame:06d}_labelIds.png, ..._instanceIds.png   every frame
        {city}_000000_flow.npz   flow float32 [T-1,2,H,W] (t -> t+1, pixels), valid uint8
                                 [T-1,H,W] (not occluded, stays in view), flow_backward and
                                 valid_backward (t+1 -> t, indexed by t), depth float16 [T,H,W] (m)

Each sequence is its own "city" (``synth000``, ``synth001``, ...), so one job writes one set of
folders. The same seed gives identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.arrays import NpzRowWriter
from pipeline.core.atomic import atomic_dir
from pipeline.core.images import write_map, write_rgb
from pipeline.core.sections import GenerateSynthcitySettings
from pipeline.core.settings import section_settings

SEQ_ID = "000000"


@dataclass(frozen=True)
class SynthSequence:
    split: str
    city: str
    index: int

    @property
    def name(self) -> str:
        """The pipeline's sequence name, as the Cityscapes adapter derives it: city_seq."""
        return f"{self.city}_{SEQ_ID}"


def settings(**values) -> GenerateSynthcitySettings:
    """A ``generate.synthcity`` section from these values and the schema's defaults (for code that
    renders without a dataset config: tests, benchmarks); a dataset's own is ``ds.synthcity``."""
    return section_settings(("generate", "synthcity"), values)


def sequences(cfg: GenerateSynthcitySettings) -> list[SynthSequence]:
    """The sequences a synthcity config describes: ``train`` of them, then ``val``."""
    out, index = [], 0
    for split in ("train", "val"):
        for _ in range(getattr(cfg, split)):
            out.append(SynthSequence(split, f"synth{index:03d}", index))
            index += 1
    return out


def sequence_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def sequence_dirs(root: str | Path, seq: SynthSequence) -> dict[str, Path]:
    root = Path(root)
    return {
        "frames": root / "leftImg8bit_sequence" / seq.split / seq.city,
        "gtfine": root / "gtFine" / seq.split / seq.city,
        "truth": root / "synthcity_gt" / seq.split / seq.city,
    }


def write_sequence(root: str | Path, seq: SynthSequence, cfg: GenerateSynthcitySettings,
                   progress=None) -> dict[str, Path]:
    """Render one sequence and write it atomically in the Cityscapes layout; returns its folders."""
    from pipeline.datasets.synthcity.render import render_sequence
    from pipeline.datasets.synthcity.scene import build_scene

    width, height = cfg.size
    num_frames, annotated, every = cfg.frames, cfg.annotated_frame, cfg.annotate_every
    scene = build_scene(sequence_seed(cfg.seed, seq.index), width, height, num_frames, motion=cfg.motion)
    dirs = sequence_dirs(root, seq)
    stem = f"{seq.city}_{SEQ_ID}"
    flow_spec, valid_spec = ((num_frames - 1, 2, height, width), np.float32), ((num_frames - 1, height, width), np.uint8)
    truth_arrays = {"flow": flow_spec, "valid": valid_spec, "flow_backward": flow_spec, "valid_backward": valid_spec,
                    "depth": ((num_frames, height, width), np.float16)}
    with atomic_dir(dirs["frames"]) as frames_dir, atomic_dir(dirs["gtfine"]) as gt_dir, \
            atomic_dir(dirs["truth"]) as truth_dir, \
            NpzRowWriter(truth_dir / f"{stem}_flow.npz", truth_arrays, truth_dir / ".scratch") as truth:
        # the exact flow and depth are streamed frame by frame: a long sequence is never in memory whole
        for t, (frame, flow, valid, back, back_valid) in enumerate(render_sequence(scene, backward=True)):
            name = f"{stem}_{t:06d}"
            write_rgb(frames_dir / f"{name}_leftImg8bit.png", frame.rgb)
            write_map(truth_dir / f"{name}_labelIds.png", frame.label)
            write_map(truth_dir / f"{name}_instanceIds.png", frame.instance.astype(np.uint16))
            if t == annotated or (every and t % every == 0):
                write_map(gt_dir / f"{name}_gtFine_labelIds.png", frame.label)
                write_map(gt_dir / f"{name}_gtFine_instanceIds.png", frame.instance.astype(np.uint16))
            truth.write("depth", t, frame.depth[None])  # sky: inf
            if flow is not None:
                for key, rows in (("flow", flow), ("valid", valid), ("flow_backward", back), ("valid_backward", back_valid)):
                    truth.write(key, t, np.asarray(rows)[None])
            if progress is not None:
                progress(1)
    return dirs
