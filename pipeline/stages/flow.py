"""Stage 'flow': optical flow between consecutive frames, results/<ds>/flow/<seq>/flow.npz:
flow (t -> t+1) and flow_backward (t+1 -> t, index t), float16 [T-1,2,H,W] in pixels, each with a
confidence float16 [T-1,1,H,W] in [0,1]. The generator warps the previous frame with the backward
flow (paper Eq. 4, 8); the forward-backward check that gives the confidence needs both anyway.

    python -m pipeline.stages.flow --dataset demo [--sequences ...] [--job-summary OUT.json]

For face and pose datasets the flow is that of the sketch / pose stage's cropped frames (the
frames the trainer sees, pipeline/datasets/conditions.py).

Modes (``datasets.<ds>.flow.mode``):
- ``given``: the dataset ships both flows (synthcity's exact flow; visibility masks are the confidences),
  resized and cropped like the frames with the vectors scaled; non-finite flow is refused.
- ``dis``: OpenCV DIS (``flow.preset``: ultrafast, fast, medium), no weights, CPU; confidence
  from the forward-backward check (pipeline/flow/dis.py).
- ``raft_large``, ``raft_small``: torchvision RAFT; ``ptlflow:<model>``: a ptlflow model
  (``ptlflow:flownet2``, the paper's FlowNet2; ``ptlflow:raft``...). Checkpoints through the weights
  registry or ``flow.weights``; batched (``flow.batch``) on the GPU when there is one
  (pipeline/flow/models.py); confidence from the same forward-backward check as DIS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_rgb
from pipeline.core.stage import Modes, sequence_stage_main
from pipeline.datasets import Sequence, conditions, given
from pipeline.flow import PTLFLOW_PREFIX
from pipeline.flow import dis as flow_dis


def learned(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    from pipeline.core.devices import pick_device
    from pipeline.flow import models as flow_models

    settings = ds.settings.flow
    table, manifest_path = given.sequence_manifest(ds, seq)
    if len(table) < 2:
        raise InputError(manifest_path, f"{seq.name} has {len(table)} frame(s); flow needs at least 2")
    device = pick_device(settings.device)
    model = flow_models.load(settings.mode, settings.weights)
    frames = LazyFrames(conditions.frame_paths(ds, seq))  # face / pose: the stage's crops, which the trainer sees
    height, width = read_rgb(frames.paths[0]).shape[:2]
    consistent = 0.0
    with given.FlowWriter(out_dir, len(frames) - 1, height, width) as out:
        for start, forward, confidence, backward, back_confidence in flow_models.estimate_batches(
                model, frames, device, settings.batch):
            for name, flow in (("forward", forward), ("backward", backward)):
                bad = ~np.isfinite(flow).all(axis=(1, 2, 3))
                if bad.any():
                    raise InputError(ds.results / "frames" / seq.name, f"{settings.mode} produced non-finite {name} "
                                     f"flow for frame pairs {(start + np.nonzero(bad)[0][:10]).tolist()}")
            out.write(start, forward, confidence[:, 0], backward, back_confidence[:, 0])
            consistent += float(confidence.sum()) / confidence[0].size
    return {"frames": len(table), "pairs": len(table) - 1, "device": str(device),
            "consistent": round(consistent / (len(table) - 1), 4)}


class LazyFrames:
    """A sequence's frames read only when sliced (a batch at a time)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: slice) -> list[np.ndarray]:
        return [read_rgb(path) for path in self.paths[index]]


def model_inputs(ds: Dataset, mode: str) -> dict:
    from pipeline.core.weights import DEFAULT_ENTRIES

    name = None
    if MODES[mode] is learned:
        from pipeline.flow import models as flow_models

        name = flow_models.registry_entry(mode)
    inputs = {"checkpoint": DEFAULT_ENTRIES[name].sha256} if name else {}
    stage = conditions.source_stage(ds)
    if stage is not None:  # face / pose: flow of the crops that stage makes
        inputs["frames_from"] = {stage: ds.cfg[stage]}
    return inputs


MODES = Modes({"given": given.copy_flow, "dis": flow_dis.estimate_sequence, "raft_large": learned, "raft_small": learned},
              families={PTLFLOW_PREFIX: learned})


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("flow", __doc__, MODES, argv, inputs_of=model_inputs)


if __name__ == "__main__":
    main()
