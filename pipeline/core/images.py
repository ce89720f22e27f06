"""Reading and writing the pipeline's image files, with errors that name the file.

RGB frames are 8-bit PNG; label maps 8-bit single channel; instance maps 16-bit single channel
(Cityscapes encoding class*1000+k fits in uint16). OpenCV does the PNG coding (fast, 16-bit aware).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import InputError

cv2.setNumThreads(1)


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB image; InputError if it is missing or cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "cannot decode image (corrupt, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_map(path: str | Path, dtype=np.uint8) -> np.ndarray:
    """(H, W) single-channel label or instance map, read without conversion."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "map file does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(path, "cannot decode map image (corrupt, truncated or not an image)")
    if image.ndim != 2:
        raise InputError(path, f"expected a single-channel map, got shape {image.shape}")
    return image.astype(dtype, copy=False)


def write_rgb(path: str | Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write image")


def write_map(path: str | Path, image: np.ndarray) -> None:
    """Write a label map (uint8) or instance map (uint16) as PNG."""
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"{path}: maps are written as uint8 or uint16, got {image.dtype}")
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write map")


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header when possible."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(path, f"cannot read image header ({err})") from None


def fit_geometry(src_w: int, src_h: int, size: tuple[int, int] | None, mode: str = "cover"):
    """How ``resize_frame`` maps a src_w x src_h image onto ``size``: (scaled_w, scaled_h, x0, y0),
    the scaled size and the top-left corner of the centre crop taken from it."""
    if size is None:
        return src_w, src_h, 0, 0
    width, height = size
    if mode == "stretch" or (src_w, src_h) == (width, height):
        return width, height, 0, 0
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    return new_w, new_h, (new_w - width) // 2, (new_h - height) // 2


def _fit(image: np.ndarray, size, mode: str, interpolation: int | None) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    new_w, new_h, x0, y0 = fit_geometry(w, h, size, mode)
    if (new_w, new_h) != (w, h):
        if interpolation is None:
            interpolation = cv2.INTER_AREA if new_w < w else cv2.INTER_CUBIC
        image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return np.ascontiguousarray(image[y0 : y0 + size[1], x0 : x0 + size[0]])


def resize_frame(image: np.ndarray, size: tuple[int, int] | None, mode: str = "cover") -> np.ndarray:
    """Resize to ``size`` = (width, height): 'cover' scales to cover it and centre-crops, 'stretch'
    ignores the aspect ratio. Area filtering when shrinking, bicubic when enlarging."""
    return _fit(image, size, mode, None)


def resize_map(image: np.ndarray, size: tuple[int, int] | None, mode: str = "cover") -> np.ndarray:
    """Resize a label or instance map like ``resize_frame`` does the frame, with nearest neighbour."""
    return _fit(image, size, mode, cv2.INTER_NEAREST)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` (H, W, 3) with a black title bar above it (the contact sheets' and videos' columns)."""
    bar = np.zeros((18, image.shape[1], 3), np.uint8)
    cv2.putText(bar, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)
