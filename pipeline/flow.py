"""Stage 'flow': forward optical flow t -> t+1 and its confidence, results/<ds>/flow/<seq>/flow.npz
(flow float16 [T-1,2,H,W] in pixels, confidence float16 [T-1,1,H,W] in [0,1]).

    python -m pipeline.flow --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.flow.mode``):
- ``given``: the dataset ships flow (synthcity's exact flow; its visibility mask is the confidence),
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
