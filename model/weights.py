"""Pretrained weights: one registry resolves every file (DESIGN.md, Weights).

Each entry names a URL, a SHA-256 (the full digest, or the leading hex digits that torchvision
puts in its file names), the file name under the cache folder (resources/weights/ by default) and
a licence note. Resolution order: a path the user gives -> the cache -> a download (resumable via a
.partial file, verified, then renamed into place). Offline and missing, it stops with a message
naming the URL and the exact path to put the file at. A file whose hash does not match is refused.

Entries live in config (``weights:``); :data:`DEFAULT_ENTRIES` are the ones the code knows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path("resources/weights")


class WeightsError(Exception):
    """Weights are missing, unreachable or do not match their registry entry."""


@dataclass(frozen=True)
class WeightEntry:
    name: str
    url: str
    file: str
    sha256: str  # full hex digest, or a prefix of it (torchvision's file-name convention)
    licence: str
    description: str = ""


DEFAULT_ENTRIES = {
    "vgg19": WeightEntry(
        name="vgg19",
        url="https://download.pytorch.org/models/vgg19-dcbfe4e1.pth",
        file="vgg19-dcbfe4e1.pth",
        sha256="dcbfe4e1",
        licence="VGG19 (Simonyan & Zisserman), ImageNet weights as released with torchvision (BSD-3-Clause)",
        description="torchvision VGG19 ImageNet weights, for the perceptual loss",
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(entry: WeightEntry, path: Path) -> Path:
    actual = sha256_of(path)
    if not actual.startswith(entry.sha256.lower()):
        raise WeightsError(f"{path}: sha256 {actual[:16]}... does not match the registry entry {entry.name!r} "
                           f"({entry.sha256[:16]}...); delete it or fetch the right file from {entry.url}")
    return path


def cache_path(entry: WeightEntry, cache_dir: Path | str | None = None) -> Path:
    base = Path(cache_dir or os.environ.get("VID2VID_WEIGHTS", DEFAULT_CACHE))
    return base / entry.file


def _download(entry: WeightEntry, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(entry.url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=30) as response, open(partial, "ab" if offset else "wb") as out:
        if offset and response.status != 206:  # server ignored the range: start over
            out.truncate(0)
        shutil.copyfileobj(response, out)
    verify(entry, partial)
    partial.rename(target)


def resolve(entry: WeightEntry, user_path: str | Path | None = None, cache_dir: Path | str | None = None,
            download: bool = True) -> Path:
    """The verified local file for ``entry`` (user path, else cache, else download)."""
    if user_path:
        path = Path(user_path)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file for {entry.name!r} does not exist")
        return verify(entry, path)
    target = cache_path(entry, cache_dir)
    if target.is_file():
        return verify(entry, target)
    if download:
        try:
            _download(entry, target)
            return target
        except WeightsError:
            raise
        except Exception as err:  # offline, DNS failure, HTTP error
            reason = f"download failed ({err})"
    else:
        reason = "downloads are disabled"
    raise WeightsError(f"weights {entry.name!r} are missing and {reason}. Download {entry.url} and put it at "
                       f"{target.resolve()} (or pass its path); licence: {entry.licence}")


def load_state_dict(entry: WeightEntry, **kwargs) -> dict:
    import torch

    path = resolve(entry, **kwargs)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: not a loadable PyTorch state dict ({err})") from None
