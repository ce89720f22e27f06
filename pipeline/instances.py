"""Stage 'instances': Cityscapes instance maps (uint16, class*1000+k for things, the class id
otherwise) for every frame, results/<ds>/instances/<seq>/NNNNNN.png.

    python -m pipeline.instances --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.instances.mode``):
- ``given``: the dataset ships an instance map per frame (synthcity's ground truth).
The paper's Mask R-CNN modes (``pretrained``, ``train``) arrive with the annotation issue.
"""

from __future__ import annotations

from pipeline import given
from pipeline.errors import main_guard
from pipeline.stage import sequence_stage_main

MODES = {"given": lambda ds, seq, out: given.copy_maps(ds, seq, out, "instance")}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("instances", __doc__, MODES, argv)


if __name__ == "__main__":
    main()
