"""Pretrained weights: one registry resolves every file (docs/architecture.md, Weights).

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
    sha256: str | None  # full hex digest, or a prefix of it (torchvision's file-name convention);
    # None: no digest is published for the file: it is accepted, and its digest is recorded by the user
    licence: str
    description: str = ""


def hub_entry(name: str, url: str, licence: str, description: str, sha256: str | None = None) -> WeightEntry:
    """An entry for a file named the torch.hub way (``<stem>-<first hex digits of its sha256>.<ext>``)."""
    file = url.rsplit("/", 1)[-1]
    prefix = file.rsplit(".", 1)[0].rsplit("-", 1)[-1]
    return WeightEntry(name, url, file, sha256 or prefix, licence, description)


_TV = "https://download.pytorch.org/models/"
_MMSEG = "https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/"
_PTLFLOW = "https://github.com/hmorimitsu/ptlflow/releases/download/weights1/"
_ENTRIES = [
    hub_entry("vgg19", _TV + "vgg19-dcbfe4e1.pth",
              "VGG19 (Simonyan & Zisserman), ImageNet weights as released with torchvision (BSD-3-Clause)",
              "torchvision VGG19 ImageNet weights, for the perceptual loss"),
    hub_entry("deeplabv3_r50_cityscapes",
              _MMSEG + "deeplabv3_r50-d8_512x1024_80k_cityscapes/deeplabv3_r50-d8_512x1024_80k_cityscapes_20200606_113404-b92cfdd4.pth",
              "mmsegmentation model zoo (Apache-2.0); trained on Cityscapes (non-commercial dataset terms)",
              "DeepLabV3 R50-D8, Cityscapes 512x1024 80k schedule, labels mode 'pretrained'"),
    hub_entry("deeplabv3_r101_cityscapes",
              _MMSEG + "deeplabv3_r101-d8_512x1024_80k_cityscapes/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth",
              "mmsegmentation model zoo (Apache-2.0); trained on Cityscapes (non-commercial dataset terms)",
              "DeepLabV3 R101-D8, Cityscapes 512x1024 80k schedule, labels mode 'pretrained'",
              sha256="9e428899b279f29964cec79ab21bb19193328b8c4d42c0db49ff9070e9ab3b2d"),
    hub_entry("maskrcnn_resnet50_fpn_coco", _TV + "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
              "torchvision (BSD-3-Clause); trained on COCO (CC BY 4.0 annotations)",
              "Mask R-CNN R50-FPN COCO, instances mode 'pretrained'"),
    hub_entry("keypointrcnn_resnet50_fpn_coco", _TV + "keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
              "torchvision (BSD-3-Clause); trained on COCO (CC BY 4.0 annotations)",
              "Keypoint R-CNN R50-FPN COCO, pose backend 'keypointrcnn'"),
    hub_entry("raft_large", _TV + "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
              "torchvision (BSD-3-Clause); trained on FlyingChairs+Things+Sintel+KITTI+HD1K",
              "torchvision RAFT large, flow mode 'raft_large'"),
    hub_entry("raft_small", _TV + "raft_small_C_T_V2-01064c6d.pth",
              "torchvision (BSD-3-Clause); trained on FlyingChairs+Things",
              "torchvision RAFT small, flow mode 'raft_small'"),
    hub_entry("mobilenet_v3_large_imagenet", _TV + "mobilenet_v3_large-8738ca79.pth",
              "torchvision (BSD-3-Clause); ImageNet", "ImageNet backbone for the trained segmenter (optional)"),
    hub_entry("resnet50_imagenet", _TV + "resnet50-0676ba61.pth",
              "torchvision (BSD-3-Clause); ImageNet", "ImageNet backbone for the trained segmenter (optional)"),
    # ptlflow checkpoints (flow modes 'ptlflow:<model>'): FlowNet2 as in the paper, and RAFT
    hub_entry("ptlflow_flownet2", _PTLFLOW + "flownet2-things-d63b53a7.ckpt",
              "ptlflow (Apache-2.0) port of NVIDIA's FlowNet2 weights (see ptlflow's model licences)",
              "FlowNet2 trained on FlyingChairs+FlyingThings3D (the paper's flow network)"),
    hub_entry("ptlflow_raft", _PTLFLOW + "raft-things-802bbcfd.ckpt",
              "ptlflow (Apache-2.0) port of RAFT (BSD-3-Clause)", "RAFT trained on FlyingChairs+FlyingThings3D"),
    hub_entry("ptlflow_raft_small", _PTLFLOW + "raft_small-things-b7d9f997.ckpt",
              "ptlflow (Apache-2.0) port of RAFT (BSD-3-Clause)", "RAFT-small trained on FlyingChairs+FlyingThings3D"),
    # evaluation extractors (pipeline/metrics/extractors.py)
    hub_entry("inception_fid", "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              "pt_inception-2015-12-05-6726825d.pth",
              "pytorch-fid (Apache-2.0) port of TensorFlow's FID Inception (inception-2015-12-05)",
              "Inception-v3 pool3 features for image FID (the TF FID network)"),
    WeightEntry("i3d_fvd", "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
                "i3d_torchscript.pt", None,
                "I3D Kinetics-400 (DeepMind, Apache-2.0), TorchScript export by StyleGAN-V (the common FVD detector)",
                "I3D features for FVD and video FID; no digest is published: fid.json records the file's sha256"),
    # NVIDIA's pretrained vid2vid models (pipeline/tools/import_official.py): zips on Google Drive, as
    # the official scripts/street/download_models*.py and scripts/face/download_models.py fetch them;
    # each unpacks into checkpoints/ (the model's folder and its single-image generator's)
    WeightEntry("vid2vid_label2city", "https://drive.google.com/uc?export=download&id=1MKtImgtnGC28EPU7Nh9DfFpHW6okNVkl",
                "models.zip", None, "NVIDIA vid2vid (CC BY-NC-SA 4.0); trained on Cityscapes (non-commercial terms)",
                "label2city_2048 (8 GPUs, 3 scales) and label2city_single; no digest is published: the import "
                "records each file's sha256"),
    WeightEntry("vid2vid_label2city_g1", "https://drive.google.com/uc?export=download&id=1QoE1p3QikxNVbbTBWWRDtIspg-RcLE8y",
                "models_g1.zip", None, "NVIDIA vid2vid (CC BY-NC-SA 4.0); trained on Cityscapes (non-commercial terms)",
                "label2city_1024_g1 (one GPU) and label2city_single; no digest is published: the import records "
                "each file's sha256"),
    WeightEntry("vid2vid_edge2face", "https://drive.google.com/uc?export=download&id=10LvNw-2lrh-6sPGkWbQDfHspkqz5AKxb",
                "models_face.zip", None, "NVIDIA vid2vid (CC BY-NC-SA 4.0); trained on FaceForensics",
                "edge2face_512 and edge2face_single (G, E, features.npy); no digest is published: the import "
                "records each file's sha256"),
    WeightEntry("resnext101_kinetics", "https://drive.google.com/uc?export=download&id=1NOSyEnwPuEdtWHnsVC8JrDfL0sY3iKZV",
                "resnext-101-kinetics.pth", None,
                "3D-ResNeXt-101 Kinetics-400 (Hara et al., MIT licence), released on Google Drive",
                "3D-ResNeXt-101 features for the paper's second video FID; Google Drive needs a browser "
                "for files this size: download it by hand; no digest is published: fid.json records the file's sha256"),
]
DEFAULT_ENTRIES = {entry.name: entry for entry in _ENTRIES}
# ptlflow model name -> registry entry of its checkpoint
PTLFLOW_CHECKPOINTS = {"flownet2": "ptlflow_flownet2", "raft": "ptlflow_raft", "raft_small": "ptlflow_raft_small"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(entry: WeightEntry, path: Path) -> Path:
    if entry.sha256 is None:  # unpinned (no published digest): callers record sha256_of(path)
        return path
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
    try:
        verify(entry, partial)
    except WeightsError:
        partial.unlink()  # resuming a wrong file would append to it forever: the next try starts over
        raise
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


def load_into(module, state: dict, source: str | Path, strict: bool = True) -> None:
    """Load ``state`` into ``module``, naming missing / unexpected keys and shape mismatches."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    problems = []
    if missing and strict:
        problems.append(f"{len(missing)} missing keys (first: {missing[:5]})")
    if unexpected and strict:
        problems.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:5]})")
    if wrong:
        problems.append(f"{len(wrong)} keys with other shapes (first: "
                        f"{[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:3]]})")
    if problems:
        raise WeightsError(f"{source}: checkpoint does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=strict)
