"""Stage 'flow': optical flow between consecutive frames, results/<ds>/flow/<seq>/flow.npz:
flow (t -> t+1) and flow_backward (t+1 -> t, index t), float16 [T-1,2,H,W] in pixels, each with a
confidence float16 [T-1,1,H,W] in [0,1]. The generator warps the previous frame with the backward
flow (paper Eq. 4, 8); the forward-backward check that gives the confidence needs both anyway.

    python -m pipeline.flow --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.flow.mode``):
- ``given``: the dataset ships both flows (synthcity's exact flow; visibility masks are the confidences),
  resized and cropped like the frames with the vectors scaled; non-finite flow is refused.
- ``dis``: OpenCV DIS (``flow.preset``: ultrafast, fast, medium), no weights, CPU; confidence
  from the forward-backward check (pipeline/flow_dis.py).
The learned modes (FlowNet2 and others through ptlflow, RAFT) arrive with the annotation issue.
"""

from __future__ import annotations

from pipeline import flow_dis, given
from pipeline.errors import main_guard
from pipeline.stage import sequence_stage_main

MODES = {"given": given.copy_flow, "dis": flow_dis.estimate_sequence}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("flow", __doc__, MODES, argv)


if __name__ == "__main__":
    main()
