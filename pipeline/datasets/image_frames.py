"""A sequence given as image files (Cityscapes, Apolloscape, imaginaire layouts) written as the
frames stage's frames: each image read, checked to be the size of the sequence's first (a mixed
sequence stops naming the file), resized and cropped as ``frames`` configures, and written as
``NNNNNN.png``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.core.images import read_rgb, resize_frame, write_rgb


def write_frames(paths: list[Path], out_dir: Path, frames) -> Iterator[tuple[int, Path, Path]]:
    """(index, source image, written frame) per image, in order; ``frames``: the dataset's
    frames settings (size, resize)."""
    first_size = None
    for index, path in enumerate(paths):
        image = read_rgb(path)
        size = (image.shape[1], image.shape[0])
        first_size = first_size or size
        if size != first_size:
            raise InputError(path, f"frame size {size[0]}x{size[1]} differs from the sequence's first frame "
                                   f"{paths[0].name} ({first_size[0]}x{first_size[1]})")
        out = out_dir / f"{index:06d}.png"
        write_rgb(out, resize_frame(image, frames.size, frames.resize))
        yield index, path, out
