"""Semantic segmenters for the labels stage (paper section 4: DeepLabV3 labels for every frame).

- :mod:`.mmseg_deeplabv3`: mmsegmentation's DeepLabV3 (R50/R101-D8) in plain PyTorch, for the
  published Cityscapes checkpoints (mode ``pretrained``);
- :mod:`.trainable`: torchvision's DeepLabV3 trained on the dataset's annotated frames (mode
  ``train``, what the paper did), and the checkpoint it writes;
- :mod:`.predict`: batched inference over frames, trainIds -> Cityscapes labelIds.
"""

from __future__ import annotations

from pathlib import Path


def require_trained(path: Path, network: str, stage: str, mode: str) -> Path:
    """``path``, the checkpoint a training stage writes, or an InputError saying how to make it."""
    from pipeline.core.errors import InputError

    if not path.is_file():
        raise InputError(path, f"no trained {network}: run `python -m pipeline.stages.{stage}` ({mode} 'train') or "
                               f"`snakemake <results>/<ds>/{path.parent.name}/{path.name}` first")
    return path
