"""Stage 'labels': Cityscapes labelIds (uint8) for every frame, results/<ds>/labels/<seq>/NNNNNN.png.

    python -m pipeline.labels --dataset demo [--sequences ...] [--job-summary OUT.json]

Modes (``datasets.<ds>.labels.mode``), paper section 4 ("semantic maps from DeepLabV3"):
- ``given``: the dataset ships a label map per frame (synthcity's ground truth); it is resized and
  cropped like the frames (nearest neighbour) and values outside 0..33 are refused.
- ``pretrained``: mmsegmentation's DeepLabV3 R50/R101-D8 with its Cityscapes weights
  (``labels.model``, a registry entry; ``labels.weights`` for a local file), in plain PyTorch
  (pipeline/segmentation/mmseg_deeplabv3.py).
- ``train``: the DeepLabV3 that ``python -m pipeline.train_segmenter`` trained on the dataset's
  annotated frames (results/<ds>/segmenter/model.pt), run on every frame.
Both model modes batch frames (``labels.batch``) on the GPU when there is one (``labels.device``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pipeline import given
from pipeline.config import Dataset
from pipeline.datasets import Sequence
from pipeline.errors import InputError, main_guard
from pipeline.images import read_rgb, write_map
from pipeline.stage import sequence_stage_main


def segmenter_path(ds: Dataset) -> Path:
    return ds.results / "segmenter" / "model.pt"


@functools.lru_cache(maxsize=2)
def load_pretrained(name: str, weights: str | None):
    """The mmseg DeepLabV3 of registry entry ``name`` with its checkpoint (verified)."""
    import torch

    from model.weights import DEFAULT_ENTRIES, load_into, resolve
    from pipeline.segmentation.mmseg_deeplabv3 import DeepLabV3, state_dict_of_checkpoint

    entry = DEFAULT_ENTRIES[name]
    path = resolve(entry, user_path=weights)
    model = DeepLabV3(depth=101 if "r101" in name else 50)
    load_into(model, state_dict_of_checkpoint(torch.load(path, map_location="cpu", weights_only=True)), path)
    return model.eval()


@functools.lru_cache(maxsize=2)
def load_trained(path: Path):
    from pipeline.segmentation import trainable

    if not path.is_file():
        raise InputError(path, "no trained segmenter: run `python -m pipeline.train_segmenter` (labels mode 'train') "
                               "or `snakemake <results>/<ds>/segmenter/model.pt` first")
    return trainable.load(path)


def segment_sequence(ds: Dataset, seq: Sequence, out_dir: Path, model) -> dict:
    from model.devices import pick_device
    from pipeline.segmentation.predict import inference_settings, segment

    table, _ = given.sequence_manifest(ds, seq)
    settings = ds.cfg["labels"]
    device = pick_device(settings["device"])
    frames = (read_rgb(ds.results / path) for path in table.path)
    for index, labels in enumerate(segment(model, frames, device, settings["batch"], **inference_settings(settings))):
        write_map(out_dir / f"{index:06d}.png", labels)
    return {"frames": len(table), "device": str(device)}


def pretrained(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    settings = ds.cfg["labels"]
    return segment_sequence(ds, seq, out_dir, load_pretrained(settings["model"], settings["weights"]))


def trained(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    return segment_sequence(ds, seq, out_dir, load_trained(segmenter_path(ds)))


def model_inputs(ds: Dataset, mode: str) -> dict:
    """What the labels depend on beyond the settings: the checkpoint's hash."""
    from model.weights import DEFAULT_ENTRIES, sha256_of

    if mode == "train":
        path = segmenter_path(ds)
        return {"segmenter": sha256_of(path) if path.is_file() else None}
    if mode == "pretrained":
        return {"segmenter": DEFAULT_ENTRIES[ds.cfg["labels"]["model"]].sha256}
    return {}


MODES = {"given": lambda ds, seq, out: given.copy_maps(ds, seq, out, "label"),
         "pretrained": pretrained, "train": trained}


@main_guard
def main(argv: list[str] | None = None) -> None:
    sequence_stage_main("labels", __doc__, MODES, argv, inputs_of=model_inputs)


if __name__ == "__main__":
    main()
