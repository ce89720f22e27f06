"""Stage 'labels': Cityscapes labelIds (uint8) for every frame, results/<ds>/labels/<seq>/NNNNNN.png.

    python -m pipeline.stages.labels --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.labels.mode``), paper section 4 ("semantic maps from DeepLabV3"):
- ``given``: the dataset ships a label map per frame (synthcity's ground truth); it is resized and
  cropped like the frames (nearest neighbour) and values outside 0..33 are refused.
- ``pretrained``: mmsegmentation's DeepLabV3 R50/R101-D8 with its Cityscapes weights
  (``labels.model``, a registry entry; ``labels.weights`` for a local file), in plain PyTorch
  (pipeline/segmentation/mmseg_deeplabv3.py).
- ``train``: the DeepLabV3 that ``python -m pipeline.stages.train_segmenter`` trained on the dataset's
  annotated frames (results/<ds>/segmenter/model.pt), run on every frame.
Both model modes batch frames (``labels.batch``) on the GPU when there is one (``labels.device``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import main_guard
from pipeline.core.images import read_rgb, write_map
from pipeline.core.stage import sequence_stage_main
from pipeline.datasets import Sequence, given
from pipeline.segmentation import loaders


def segment_sequence(ds: Dataset, seq: Sequence, out_dir: Path, model) -> dict:
    from pipeline.core.devices import pick_device
    from pipeline.segmentation.predict import inference_settings, segment

    table, _ = given.sequence_manifest(ds, seq)
    settings = ds.settings.labels
    device = pick_device(settings.device)
    frames = (read_rgb(ds.results / path) for path in table.path)
    for index, labels in enumerate(segment(model, frames, device, settings.batch, **inference_settings(settings))):
        write_map(out_dir / f"{index:06d}.png", labels)
    return {"frames": len(table), "device": str(device)}


def segmented(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    """Modes 'pretrained' and 'train': the dataset's segmenter (pipeline/segmentation/loaders.py)."""
    return segment_sequence(ds, seq, out_dir, loaders.load(ds).model)


def model_inputs(ds: Dataset, mode: str) -> dict:
    """What the labels depend on beyond the settings: the checkpoint's hash."""
    from pipeline.core.weights import DEFAULT_ENTRIES, sha256_of

    if mode == "train":
        path = loaders.segmenter_path(ds)
        return {"segmenter": sha256_of(path) if path.is_file() else None}
    if mode == "pretrained":
        return {"segmenter": DEFAULT_ENTRIES[ds.settings.labels.model].sha256}
    return {}


MODES = {"given": lambda ds, seq, out: given.copy_maps(ds, seq, out, "label"),
         "pretrained": segmented, "train": segmented}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("labels", __doc__, MODES, argv, inputs_of=model_inputs)


if __name__ == "__main__":
    main()
