"""Stage 'labels': Cityscapes labelIds (uint8) for every frame, results/<ds>/labels/<seq>/NNNNNN.png.

    python -m pipeline.labels --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.labels.mode``):
- ``given``: the dataset ships a label map per frame (synthcity's ground truth); it is resized and
  cropped like the frames (nearest neighbour) and values outside 0..33 are refused.
The paper's DeepLabV3 modes (``pretrained``, ``train``) arrive with the annotation issue.
"""

from __future__ import annotations

from pipeline import given
from pipeline.errors import main_guard
from pipeline.stage import sequence_stage_main

MODES = {"given": lambda ds, seq, out: given.copy_maps(ds, seq, out, "label")}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("labels", __doc__, MODES, argv)


if __name__ == "__main__":
    main()
