"""Stage 'side_by_side': the paper's comparison videos, for each val sequence: the input (labels
in Cityscapes colours; face / pose: the sketch or pose map) | each compared method | the real
video, side by side, each column titled, as an H.264 mp4 (results/<ds>/videos/<seq>.mp4).

``--sheet`` writes a contact sheet instead: frames as rows, the
same columns (a PNG, results/<ds>/comparison_sheet.png): frames 0, 1, 2, 10 and the last, those the
sequence has, or the frames ``--frames`` lists (evaluate.sheet_frames; one the sequence lacks is
an error).

    python -m pipeline.stages.side_by_side --dataset demo --methods frame_by_frame covst vid2vid \
        --sequence synth008_000000 --output results/demo/videos/synth008_000000.mp4
    python -m pipeline.stages.side_by_side --dataset demo --methods frame_by_frame covst vid2vid \
        --sequence synth008_000000 --sheet [--frames 0 1 2 10 29] --output results/demo/comparison_sheet.png
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.cityscapes_labels import color_palette
from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_rgb, titled
from pipeline.core.synthesized import sequence_frames
from pipeline.datasets.manifest import add_rate_args, rates_from_args


def input_tile(maps: np.ndarray) -> tuple[np.ndarray, str]:
    """The generator's input as an RGB picture: labelIds in Cityscapes colours, a face sketch as
    grey, a pose map as it is (its first three channels)."""
    if maps.ndim == 2:
        palette = color_palette()
        return palette[np.minimum(maps, len(palette) - 1)], "input labels"
    if maps.shape[-1] == 1:
        return np.repeat(maps, 3, axis=-1), "input sketch"
    return np.ascontiguousarray(maps[..., :3]), "input pose"


def compose(labels: np.ndarray, columns: dict[str, np.ndarray], real: np.ndarray) -> np.ndarray:
    """One frame of the video: input | methods... | real, each with its title."""
    tiles = [titled(*input_tile(labels))]
    tiles += [titled(frame, name) for name, frame in columns.items()]
    tiles.append(titled(real, "real"))
    return np.concatenate(tiles, axis=1)


def write_video(ds, methods: list[str], sequence: str, output: Path, fps: float = 17.0) -> Path:
    from model.synthesis import Mp4Writer

    labels, real, files = sequence_frames(ds, methods, sequence)
    output.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(output, fps) as video:
        for t in range(len(real)):
            video.write(compose(labels[t], {m: read_rgb(files[m][t]) for m in methods}, real[t]))
    return output


def default_sheet_frames(length: int) -> list[int]:
    """The rows of a contact sheet no one chose: frames 0, 1, 2, 10 and the last, those a sequence
    of ``length`` frames has."""
    return sorted({t for t in (0, 1, 2, 10, length - 1) if 0 <= t < length})


def write_sheet(ds, methods: list[str], sequence: str, frames: list[int] | None, output: Path) -> Path:
    """A contact sheet: one row per frame index (titled ``frame t``), input | methods | real;
    ``frames`` None: :func:`default_sheet_frames`; a listed frame the sequence lacks is an error."""
    from pipeline.core.atomic import atomic_file

    labels, real, files = sequence_frames(ds, methods, sequence)
    frames = default_sheet_frames(len(real)) if frames is None else frames
    beyond = [t for t in frames if not 0 <= t < len(real)]
    if beyond:
        raise InputError(f"{ds.config_key}.evaluate.sheet_frames", f"{sequence} has {len(real)} frames: no frame "
                                                                   f"{beyond} (leave sheet_frames out for frames it has)")
    rows = []
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.42
    width = max(cv2.getTextSize(f"frame {t}", font, size, 1)[0][0] for t in frames) + 8
    for t in frames:
        row = compose(labels[t], {m: read_rgb(files[m][t]) for m in methods}, real[t])
        label = np.zeros((row.shape[0], width, 3), np.uint8)
        cv2.putText(label, f"frame {t}", (4, row.shape[0] // 2), font, size, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=1))
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(output) as tmp:
        _, encoded = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
        tmp.write_bytes(encoded.tobytes())
    return output


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging

    parser = cli_parser("python -m pipeline.stages.side_by_side", __doc__)
    add_dataset_args(parser)
    parser.add_argument("--methods", nargs="+", required=True, help="runs shown, left to right (their results/<ds>/synth/<run>/)")
    parser.add_argument("--sequence", required=True, help="the sequence shown")
    parser.add_argument("--output", type=Path, required=True, help="the mp4 (or, with --sheet, the PNG) to write")
    add_rate_args(parser)
    parser.add_argument("--sheet", action="store_true",
                        help="write a contact sheet (PNG) instead: frames 0, 1, 2, 10 and the last, or --frames")
    parser.add_argument("--frames", type=int, nargs="+", help="the contact sheet's frames (implies --sheet)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    if args.sheet or args.frames:
        print(write_sheet(ds, args.methods, args.sequence, args.frames, args.output))
    else:
        print(write_video(ds, args.methods, args.sequence, args.output,
                          rates_from_args(args).get(args.sequence, args.fps)))


if __name__ == "__main__":
    main()
