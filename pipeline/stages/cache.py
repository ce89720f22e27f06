"""Stage 'cache': pack each shard's sequences into one memory-mappable safetensors file.

    python -m pipeline.stages.cache pack --dataset demo --sequences A B ... --output results/demo/cache/S.safetensors
    python -m pipeline.stages.cache index --output results/demo/cache/index.json SHARD.safetensors ...

Per sequence ``<seq>`` the shard holds (docs/architecture.md, data contracts):

    <seq>/frames       uint8   [T, H, W, 3]   RGB (channels-last: a free NCHW channels_last view)
    <seq>/labels       uint8   [T, H, W]      Cityscapes labelIds 0..33 (one-hot is made on the device)
    <seq>/instances    uint16  [T, H, W]      class*1000+k for things, the class id otherwise
                                              (absent with instances mode none: instance_maps false)
    <seq>/flow         float16 [T-1, 2, H, W] forward flow t -> t+1 in pixels
    <seq>/confidence   uint8   [T-1, H, W]    flow confidence * 255
    <seq>/flow_backward, <seq>/confidence_backward   the same for t+1 -> t (index t)

Face and pose datasets (pipeline/datasets/conditions.py) keep, instead of labels and instances,

    <seq>/condition    uint8   [T, H, W, C]   the sketch (C = 1) or pose map [+ DensePose IUV] (C = 3, 6)

with the frames being the sketch / pose stage's crops; the header says ``condition: maps`` and
names the channels (``condition_channels``); street datasets have ``condition: labels``.

and a JSON header (safetensors ``__metadata__['vid2vid']``): dataset, task, sequences with split,
length and size, channel meanings, label set, and the fingerprints of the stages it was made from,
so the trainer can refuse a cache that does not match its config (model/data.py).

Format chosen by measurement (benchmarks/cache_formats.py, 6-frame clips at 512x256): safetensors
reads ~1700 clips/s, raw .npy memmaps ~3000, zarr v3 ~150, PNG + npz ~17. Both memmap formats are
far above what the loader's augmentation consumes (~60 clips/s per core); safetensors wins on
keeping a shard in one file with its header built in.

While packing every sequence is checked: frames present and numbered, label ids inside the label
set, every map the frames' size, flow finite and one pair per consecutive frames. All problems
found are reported with their files; nothing is written then. Packing streams: each frame (and a
few flow pairs at a time) is written as it is read (pipeline/core/safetensors_stream.py), so a
1200-frame video takes no more memory than a 100-frame one (benchmarks/long_video_memory.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline import datasets
from pipeline.core.arrays import NpzRows
from pipeline.core.atomic import atomic_file
from pipeline.core.cache_format import CACHE_FORMAT, read_header
from pipeline.core.cityscapes_labels import INSTANCE_DIVISOR, LABEL_SET, NUM_LABEL_IDS
from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.config import Dataset
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import image_size, read_map, read_rgb
from pipeline.core.safetensors_stream import StreamWriter, room_for
from pipeline.core.stage import read_stamp
from pipeline.datasets import conditions

VERSION = 1
CHANNELS = {
    "frames": "RGB uint8 [T,H,W,3]",
    "labels": f"Cityscapes labelIds uint8 [T,H,W], 0..{NUM_LABEL_IDS - 1}",
    "instances": "Cityscapes instance ids uint16 [T,H,W]: class*1000+k for things, class id otherwise",
    "condition": "face / pose maps uint8 [T,H,W,{c}]: {names}",
    "flow": "forward flow t->t+1 float16 [T-1,2,H,W], pixels (x, y)",
    "confidence": "flow confidence uint8 [T-1,H,W], value/255",
    "flow_backward": "backward flow t+1->t float16 [T-1,2,H,W] (index t), pixels (x, y)",
    "confidence_backward": "backward flow confidence uint8 [T-1,H,W], value/255",
}
MAX_PROBLEMS = 20


class Problems(list):
    """Collects what is wrong in a shard, so one run reports all of it."""

    def add(self, where, problem: str) -> None:
        self.append(f"{where}: {problem}")

    def raise_if_any(self, shard: str) -> None:
        if self:
            shown = "\n  ".join(self[:MAX_PROBLEMS])
            more = f"\n  ... and {len(self) - MAX_PROBLEMS} more" if len(self) > MAX_PROBLEMS else ""
            raise InputError(shard, f"{len(self)} problem(s) in the stage outputs, nothing written:\n  {shown}{more}")


def _check_map(key: str, image: np.ndarray, path, problems: Problems) -> bool:
    """Label ids inside the label set, instance classes too; adds the problem and says False if not."""
    if key == "labels" and image.max() >= NUM_LABEL_IDS:
        bad = np.unique(image[image >= NUM_LABEL_IDS])[:5].tolist()
        problems.add(path, f"label ids {bad} outside the label set 0..{NUM_LABEL_IDS - 1}")
        return False
    if key == "instances":
        classes = np.where(image >= INSTANCE_DIVISOR, image // INSTANCE_DIVISOR, image)
        if classes.max() >= NUM_LABEL_IDS or image.max() > np.iinfo(np.uint16).max:
            problems.add(path, f"instance ids whose class is outside 0..{NUM_LABEL_IDS - 1}")
            return False
    return True


def _frame_readers(ds: Dataset, seq: datasets.Sequence, layout: dict, densepose: bool, frame_path: Path,
                   index: int) -> dict:
    """What frame ``index`` of a sequence is cached from: {array name: (path, reader)}, for the
    arrays ``layout`` (:func:`_layout`) holds (``densepose``: the pose maps carry DensePose IUV)."""
    readers = {"frames": (frame_path, read_rgb)}
    for key in ("labels", "instances"):
        if key in layout:
            readers[key] = (ds.results / key / seq.name / f"{index:06d}.png", lambda p: read_map(p, np.int64))
    if "condition" in layout:
        readers["condition"] = (conditions.condition_path(ds, seq, index),
                                lambda p: conditions.read_condition(ds, p, densepose))
    return readers


def _read_frame(ds: Dataset, readers: dict, layout: dict, problems: Problems) -> dict | None:
    """One frame's images, each checked for size, channels and values: {array name: image}, or
    None when any has a problem (added to ``problems``)."""
    height, width = layout["frames"][0][1:3]
    images, before = {}, len(problems)
    for key, (path, read) in readers.items():
        try:
            image = read(path)
        except InputError as err:
            problems.add(err.where, err.problem)
            continue
        if image.shape[:2] != (height, width):
            problems.add(path, f"size {image.shape[1]}x{image.shape[0]} differs from the frames' {width}x{height}")
            continue
        if image.shape[2:] != layout[key][0][3:]:
            problems.add(path, f"{image.shape[2]} channels, expected {layout[key][0][3]} "
                               f"({conditions.channels(ds)})")
            continue
        if _check_map(key, image, path, problems):
            images[key] = image
    return images if len(problems) == before else None


FLOW_CHUNK = 32  # frame pairs converted and written at a time


def _write_flows(flow_path: Path, name: str, layout: dict, out: StreamWriter | None, problems: Problems) -> None:
    """The sequence's forward and backward flows (float16) and confidences (uint8), shape-checked,
    streamed from flow.npz into ``out`` a few frame pairs at a time (``out`` None: check only)."""
    n_pairs, _, height, width = layout["flow"][0]
    try:
        for key, conf_key in (("flow", "confidence"), ("flow_backward", "confidence_backward")):
            with NpzRows(flow_path, key) as flows, NpzRows(flow_path, conf_key) as confidences:
                if flows.shape != (n_pairs, 2, height, width):
                    problems.add(flow_path, f"{key} shape {flows.shape}, expected {(n_pairs, 2, height, width)} "
                                            f"for {n_pairs + 1} frames of {width}x{height}")
                    continue
                if confidences.shape != (n_pairs, 1, height, width):
                    problems.add(flow_path, f"{conf_key} shape {confidences.shape}, expected {(n_pairs, 1, height, width)}")
                    continue
                bad = []
                for (start, flow), (_, confidence) in zip(flows.chunks(FLOW_CHUNK), confidences.chunks(FLOW_CHUNK)):
                    finite = np.isfinite(flow).all(axis=(1, 2, 3))
                    bad += (start + np.nonzero(~finite)[0]).tolist()
                    if out is not None and not bad:
                        out.write(f"{name}/{key}", start, flow.astype(np.float16))
                        scaled = np.clip(confidence[:, 0].astype(np.float32), 0, 1) * 255
                        out.write(f"{name}/{conf_key}", start, np.rint(scaled).astype(np.uint8))
                if bad:
                    problems.add(flow_path, f"{key} is NaN/inf at frame pairs {bad[:10]}")
    except InputError as err:
        problems.add(err.where, err.problem)


def _layout(ds: Dataset, seq: datasets.Sequence, problems: Problems) -> tuple[list[Path], dict] | None:
    """A sequence's frame files and its tensors' (shape, dtype) by array name, or None when its
    frames cannot be listed (the problem added)."""
    try:
        frame_paths = conditions.frame_paths(ds, seq)
        width, height = image_size(frame_paths[0])
    except InputError as err:
        problems.add(err.where, err.problem)
        return None
    n = len(frame_paths)
    layout = {"frames": ((n, height, width, 3), np.uint8)}
    if conditions.source_stage(ds) is None:
        layout["labels"] = ((n, height, width), np.uint8)
        if conditions.has_instance_maps(ds):
            layout["instances"] = ((n, height, width), np.uint16)
    else:
        layout["condition"] = ((n, height, width, len(conditions.channels(ds))), np.uint8)
    for key in ("flow", "flow_backward"):
        layout[key] = ((n - 1, 2, height, width), np.float16)
    for key in ("confidence", "confidence_backward"):
        layout[key] = ((n - 1, height, width), np.uint8)
    return frame_paths, layout


def _write_sequence(ds: Dataset, seq: datasets.Sequence, frame_paths: list[Path], layout: dict,
                    out: StreamWriter | None, problems: Problems) -> None:
    """One sequence's frames, maps and flows, checked and streamed frame by frame into ``out``
    (None once a problem was found: the rest is only checked, nothing is kept)."""
    densepose = conditions.source_stage(ds) == "pose" and conditions.has_densepose(ds)  # once, not per frame
    for index, frame_path in enumerate(frame_paths):
        images = _read_frame(ds, _frame_readers(ds, seq, layout, densepose, frame_path, index), layout, problems)
        if images is not None and out is not None and not problems:
            for key, image in images.items():
                out.write(f"{seq.name}/{key}", index, image.astype(layout[key][1]))
    _write_flows(ds.results / "flow" / seq.name / "flow.npz", seq.name, layout, out if not problems else None, problems)


def _sources(ds: Dataset, seq: datasets.Sequence) -> dict:
    stamps = {}
    for stage in ("frames",) + conditions.annotation_stages(ds):
        stamp = read_stamp(ds.results / stage / seq.name)
        stamps[stage] = stamp.get("fingerprint") if stamp else None
    return stamps


def pack(ds: Dataset, names: list[str] | None, output: Path) -> dict:
    """Validate and pack the sequences into ``output``, streamed frame by frame (memory does not
    grow with a video's length, pipeline/core/safetensors_stream.py); returns the header."""
    seqs = datasets.select(ds, names)
    problems = Problems()
    layouts, tensors, entries = [], {}, []
    for seq in seqs:
        found = _layout(ds, seq, problems)
        if found is None:
            continue
        frame_paths, layout = found
        layouts.append((seq, frame_paths, layout))
        tensors.update({f"{seq.name}/{key}": spec for key, spec in layout.items()})
        n, height, width = layout["frames"][0][:3]
        entries.append({"name": seq.name, "split": seq.split, "frames": n, "height": height, "width": width,
                        "sources": _sources(ds, seq)})
    header = {
        "format": CACHE_FORMAT, "version": VERSION, "dataset": ds.name, "task": ds.settings.task,
        "stage_modes": {stage: getattr(ds.settings, stage).mode for stage in conditions.annotation_stages(ds)},
        "sequences": entries,
        "checksums": {name: 0xFFFFFFFF for name in tensors},  # CRC-32 per tensor, known once written
    }
    if conditions.source_stage(ds) is None:
        instance_maps = conditions.has_instance_maps(ds)
        header.update(condition="labels", label_set=LABEL_SET, num_label_ids=NUM_LABEL_IDS, instance_maps=instance_maps,
                      channels={k: v for k, v in CHANNELS.items()
                                if k != "condition" and (instance_maps or k != "instances")})
    else:
        names = conditions.channels(ds)
        header.update(condition="maps", condition_channels=names, label_set=None, num_label_ids=None,
                      channels={k: v for k, v in CHANNELS.items() if k not in ("labels", "instances")})
        header["channels"]["condition"] = header["channels"]["condition"].format(c=len(names), names=", ".join(names))
    with atomic_file(output) as tmp:
        draft = {"vid2vid": json.dumps(header, sort_keys=True)}
        with StreamWriter(tmp, tensors, room_for(draft)) as out:
            for seq, frame_paths, layout in layouts:
                _write_sequence(ds, seq, frame_paths, layout, out, problems)
            problems.raise_if_any(str(output))
            header["checksums"] = out.checksums
            out.finish({"vid2vid": json.dumps(header, sort_keys=True)})
    return header


def write_index(shards: list[Path], output: Path) -> dict:
    """The dataset's cache index: every shard with its sequences (what the trainer's rule depends on)."""
    index = {"format": CACHE_FORMAT, "version": VERSION, "shards": []}
    for path in shards:
        header = read_header(path)
        index.setdefault("dataset", header["dataset"])
        index["shards"].append({"path": str(Path(path).name), "sequences": header["sequences"]})
    index["sequences"] = sum(len(s["sequences"]) for s in index["shards"])
    index["frames"] = sum(seq["frames"] for s in index["shards"] for seq in s["sequences"])
    with atomic_file(output) as tmp:
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    return index


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.cache", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    pack_cmd = commands.add_parser("pack", help="pack sequences into one shard")
    add_dataset_args(pack_cmd)
    pack_cmd.add_argument("--sequences", nargs="+", help="sequence names (default: all)")
    pack_cmd.add_argument("--output", type=Path, required=True, help="the shard file (.safetensors)")
    index_cmd = commands.add_parser("index", help="write the index of a dataset's shards")
    index_cmd.add_argument("--output", type=Path, required=True, help="the index to write (results/<ds>/cache/index.json)")
    index_cmd.add_argument("shards", nargs="+", type=Path, help="the shard files the index lists")
    args = parser.parse_args(argv)
    log = setup_logging(getattr(args, "verbose", False))
    if args.command == "pack":
        ds, _ = dataset_from_args(args)
        header = pack(ds, args.sequences, args.output)
        frames = sum(s["frames"] for s in header["sequences"])
        log.info("%s: %d sequences, %d frames, %.1f MiB", args.output, len(header["sequences"]), frames,
                 args.output.stat().st_size / 2**20)
    else:
        index = write_index(args.shards, args.output)
        log.info("%s: %d shards, %d sequences, %d frames", args.output, len(index["shards"]),
                 index["sequences"], index["frames"])


if __name__ == "__main__":
    main()
