"""Speed of the annotation stages' networks (frames/s; flow: frame pairs/s, forward + backward +
check) at 256x128 and 512x256, on the CPU and on the GPU when there is one (the card is named).

    python benchmarks/annotation_speed.py [--device cpu|cuda|both] [--frames 8]

Networks run with untrained weights: speed does not depend on the values (the pretrained files
cannot be downloaded here). GPU: bf16 autocast and channels_last as the stages run them, timed
after a warm-up with torch.cuda.synchronize. CPU: every core torch is given.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
from _table import print_table

from pipeline.core import config as config_mod
from pipeline.flow import dis as flow_dis
from pipeline.flow import models as flow_models
from pipeline.segmentation import maskrcnn, predict
from pipeline.segmentation.mmseg_deeplabv3 import DeepLabV3
from pipeline.segmentation.trainable import TorchvisionDeepLabV3
from pipeline.stages import train_segmenter


def train_mode_settings():
    """``labels.train`` as the config schema's defaults fill it (what train mode builds)."""
    config = config_mod.validate({"results": ".", "datasets": {"speed": {"adapter": "cityscapes", "root": "."}}})
    return config_mod.dataset(config, "speed").settings.labels.train


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (cudnn autotune, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def segmenter_rate(model, frames, device, batch, scales=(1.0,), flip=False) -> float:
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    return len(frames) / timed(lambda: list(predict.segment(model, frames, device, batch, scales, flip)), device, 2)


def multiscale_flip_rate(model, frames, device, batch) -> float:
    """As the demo's labels stage runs the trained segmenter: scales 1 and 1.5, mirrored too."""
    return segmenter_rate(model, frames, device, batch, (1.0, 1.5), True)


def maskrcnn_rate(model, frames, device, batch) -> float:
    model = model.to(device).eval()

    def run():
        for start in range(0, len(frames), batch):
            images = [torch.from_numpy(f).permute(2, 0, 1).float().div(255).to(device) for f in frames[start:start + batch]]
            with torch.inference_mode():
                model(images)
    return len(frames) / timed(run, device, 2)


def flow_rate(model, frames, device, batch) -> float:
    return (len(frames) - 1) / timed(lambda: flow_models.estimate(model, frames, device, batch), device, 2)


def dis_rate(frames, preset) -> float:
    dis = cv2.DISOpticalFlow_create(flow_dis.PRESETS[preset])
    return (len(frames) - 1) / timed(lambda: [flow_dis.estimate_pair(dis, a, b) for a, b in zip(frames[:-1], frames[1:])],
                                     torch.device("cpu"), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="both", choices=["cpu", "cuda", "both"])
    parser.add_argument("--frames", type=int, default=8, help="frames per measurement on the CPU (x8 on the GPU)")
    parser.add_argument("--skip", nargs="*", default=[], help="networks to leave out")
    args = parser.parse_args()
    devices = []
    if args.device in ("cpu", "both"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "both") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        torch.backends.cudnn.benchmark = True
    networks = {
        "labels: DeepLabV3 R101-D8 (mmseg, pretrained mode)": ("seg", lambda: DeepLabV3(101)),
        "labels: DeepLabV3 R50-D8 (mmseg, pretrained mode)": ("seg", lambda: DeepLabV3(50)),
        "labels: DeepLabV3 MobileNetV3 (plain, torchvision's head)": ("seg", lambda: TorchvisionDeepLabV3("mobilenet_v3_large")),
        "labels: DeepLabV3 MobileNetV3 (train mode)": ("seg", lambda: train_segmenter.build_model(train_mode_settings())),
        "labels: the same, scales 1 + 1.5 and flip (the demo's)": (
            "seg_ms", lambda: train_segmenter.build_model(train_mode_settings())),
        "instances: Mask R-CNN R50-FPN (pretrained mode)": ("det", lambda: maskrcnn.build("resnet50", 91)),
        "instances: Mask R-CNN MobileNetV3-FPN (train mode)": ("det", lambda: maskrcnn.build("mobilenet_v3_large")),
        "flow: torchvision raft_large": ("flow", lambda: flow_models.load("raft_large", "random")),
        "flow: torchvision raft_small": ("flow", lambda: flow_models.load("raft_small", "random")),
        "flow: ptlflow:flownet2": ("flow", lambda: flow_models.load("ptlflow:flownet2", "random")),
        "flow: ptlflow:raft": ("flow", lambda: flow_models.load("ptlflow:raft", "random")),
    }
    rows = []
    for width, height in ((256, 128), (512, 256)):
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (height + 16, width + 16, 3), dtype=np.uint8)
        for device in devices:
            n = args.frames * (8 if device.type == "cuda" else 1)
            frames = [np.ascontiguousarray(base[i % 16:i % 16 + height, i % 16:i % 16 + width]) for i in range(n)]
            name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
            batch = 16 if device.type == "cuda" else 4
            for label, (kind, build) in networks.items():
                if any(s in label for s in args.skip):
                    continue
                try:
                    model = build()
                    if "train mode" in label and kind == "det":  # trained at the frames' size, runs at it
                        model.transform.min_size, model.transform.max_size = (height,), 4 * height
                    rate = {"seg": segmenter_rate, "seg_ms": multiscale_flip_rate, "det": maskrcnn_rate,
                            "flow": flow_rate}[kind](model, frames, device, batch)
                    rows.append([label, f"{width}x{height}", name, f"{rate:.1f}"])
                except Exception as err:  # e.g. ptlflow missing: say so in the table
                    rows.append([label, f"{width}x{height}", name, f"failed: {type(err).__name__}: {str(err)[:60]}"])
                print(rows[-1], flush=True)
            if device.type == "cpu":
                for preset in ("medium", "fast"):
                    rows.append([f"flow: DIS {preset} (OpenCV, CPU)", f"{width}x{height}", name,
                                 f"{dis_rate(frames, preset):.1f}"])
    print_table("annotation networks: frames/s (flow: frame pairs/s incl. backward flow + check)",
                ["network", "resolution", "device", "rate"], rows)


if __name__ == "__main__":
    main()
