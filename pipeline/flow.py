"""Stage 'flow': optical flow between consecutive frames, results/<ds>/flow/<seq>/flow.npz:
flow (t -> t+1) and flow_backward (t+1 -> t, index t), float16 [T-1,2,H,W] in pixels, each with a
confidence float16 [T-1,1,H,W] in [0,1]. The generator warps the previous frame with the backward
flow (paper Eq. 4, 8); the forward-backward check that gives the confidence needs both anyway.

    python -m pipeline.flow --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.flow.mode``):
- ``given``: the dataset ships both flows (synthcity's exact flow; visibility masks are the confidences),
  resized and cropped like the frames with the vectors scaled; non-finite flow is refused.
The estimated modes (FlowNet2 and others through ptlflow, RAFT, OpenCV DIS) arrive with the
annotation issue.
"""

from __future__ import annotations

from pipeline import given
from pipeline.errors import main_guard
from pipeline.stage import sequence_stage_main

MODES = {"given": given.copy_flow}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("flow", __doc__, MODES, argv)


if __name__ == "__main__":
    main()
