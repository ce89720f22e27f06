"""Cityscapes adapter: ``leftImg8bit_sequence/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png``.

A sequence is one ``{city}_{seq}`` snippet (30 frames at 17 Hz in Cityscapes). The split
``demoVideo`` reads Cityscapes' three long demo videos instead (``leftImg8bit_demoVideo.zip``:
``leftImg8bit/demoVideo/stuttgart_0{0,1,2}/``, 599, 1100 and 1200 frames, no annotations), the
paper's long-video results. Frame 19 of each
snippet has fine annotations in ``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png``
(and ``_instanceIds.png``): the "annotated" frames that the segmenter is trained on. A
``synthcity_gt/`` folder beside them (the generated demo) adds ground truth for every frame.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.datasets import FrameRecord, Sequence
from pipeline.datasets.image_frames import write_frames

_FRAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")

def _split_dir(ds: Dataset, split: str) -> Path:
    """Where a split's frames are: leftImg8bit_sequence/<split>, or leftImg8bit/demoVideo."""
    return ds.root / ("leftImg8bit" if split == "demoVideo" else "leftImg8bit_sequence") / split


def _check_root(ds: Dataset) -> Path:
    root = ds.root
    if not root.is_dir():
        raise InputError(root, f"data root does not exist ({ds.config_key}.root): expected a Cityscapes folder "
                               f"with leftImg8bit_sequence/ and gtFine/")
    for split in ds.settings.splits:
        folder = _split_dir(ds, split).parent
        if not folder.is_dir():
            archive = "leftImg8bit_demoVideo.zip" if split == "demoVideo" else "leftImg8bit_sequence_trainvaltest.zip"
            raise InputError(folder, f"missing: {ds.config_key}.root must hold the {folder.name}/ folder of "
                                     f"Cityscapes for split {split} (unpack {archive} into {root})")
    if ds.settings.require_annotations and not (root / "gtFine").is_dir():
        raise InputError(root / "gtFine", f"missing: the annotated frames (gtFine/) are needed to train the "
                                          f"segmenter; unpack gtFine_trainvaltest.zip into {root}, or set "
                                          f"{ds.config_key}.require_annotations: false")
    return root

def _scan(ds: Dataset, split: str) -> dict[str, list[tuple[int, Path]]]:
    """{sequence name: [(frame number, path), ...]} of one split."""
    found: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    split_dir = _split_dir(ds, split)
    if not split_dir.is_dir():
        return found
    # hidden names are not data: a killed job's temporary folder (pipeline/core/atomic.py) holds
    # frames with real names, and would pass for a sequence
    for city_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in city_dir.iterdir():
            match = _FRAME.match(path.name)
            if match:
                found[f"{match['city']}_{match['seq']}"].append((int(match["frame"]), path))
    return found

def list_sequences(ds: Dataset) -> list[Sequence]:
    _check_root(ds)
    seqs, seen = [], {}
    for split in ds.settings.splits:
        for name, frames in _scan(ds, split).items():
            folder = frames[0][1].parent
            if name in seen:  # one name, two sequences: the cache would keep only one of them
                raise InputError(folder, f"sequence {name} is also in {seen[name]}: a sequence name must "
                                         f"be unique across the splits; rename one of the cities")
            seen[name] = folder
            seqs.append(Sequence(name, split, folder.name))
    if not seqs:
        raise InputError(_split_dir(ds, ds.settings.splits[0]).parent, f"no *_leftImg8bit.png frames in the splits "
                                                                       f"{ds.settings.splits}")
    return sorted(seqs, key=lambda s: s.name)

def _annotation(ds: Dataset, split: str, city: str, stem: str, kind: str) -> str:
    path = ds.root / "gtFine" / split / city / f"{stem}_gtFine_{kind}.png"
    return str(path) if path.is_file() else ""

def _truth(ds: Dataset, split: str, city: str, name: str) -> str:
    path = ds.root / "synthcity_gt" / split / city / name
    return str(path) if path.is_file() else ""

def extract(ds: Dataset, seq: Sequence, out_dir: Path, ffmpeg: str) -> list[FrameRecord]:
    _check_root(ds)
    frames = sorted(_scan(ds, seq.split).get(seq.name, []))
    if not frames:
        raise InputError(_split_dir(ds, seq.split), f"sequence {seq.name} has no frames")
    numbers = [n for n, _ in frames]
    gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if gaps:
        raise InputError(frames[0][1].parent, f"sequence {seq.name} is missing frames {gaps[:10]}"
                                               f"{' ...' if len(gaps) > 10 else ''} between {numbers[0]:06d} "
                                               f"and {numbers[-1]:06d}")
    fcfg = ds.settings.frames
    if fcfg.max_frames:
        frames = frames[: fcfg.max_frames]
    city = frames[0][1].parent.name
    flow_npz = _truth(ds, seq.split, city, f"{seq.name}_flow.npz")
    records = []
    for (index, path, out), (number, _) in zip(write_frames([p for _, p in frames], out_dir, fcfg), frames):
        stem = f"{seq.name}_{number:06d}"
        gt_label = _annotation(ds, seq.split, city, stem, "labelIds")
        records.append(FrameRecord(
            index=index,
            file=out,
            timestamp=index / fcfg.sequence_fps,
            source=str(path),
            annotated=bool(gt_label),
            gt_label=gt_label or _truth(ds, seq.split, city, f"{stem}_labelIds.png"),
            gt_instance=_annotation(ds, seq.split, city, stem, "instanceIds")
            or _truth(ds, seq.split, city, f"{stem}_instanceIds.png"),
            gt_flow=flow_npz,
        ))
    return records
