"""Stage 'sketch' (task face): dlib landmarks, a stable face crop and the edge-to-face sketch for
every frame, results/<ds>/sketch/<seq>/.

    python -m pipeline.stages.sketch --dataset face_demo [--sequences ...] [--contact-sheet OUT.png]

Per sequence (paper section 4, face videos; the official edge2face inputs):
    landmarks.csv      frame, detected (0/1), faces found, x0,y0..x67,y67 in the frame's pixels
    crop.json          the square crop (x0, y0, side) in the frame, and the output size
    frames/NNNNNN.png  the real frame cropped and resized (the training target)
    NNNNNN.png         the sketch (uint8, 255 on lines): landmark curves + Canny edges outside the face
    official/NNNNNN.npz  style official only: the input of NVIDIA's edge2face_512 (16 maps,
                       pipeline/face/official_input.py); NNNNNN.png is then its edge map
Modes (``sketch.mode``): ``dlib`` detects the landmarks; ``given`` reads them (a JSON list of 68
[x, y] per frame, imaginaire's landmarks-dlib68: ``sketch.landmarks_dir/<seq>/`` or the dataset
layout's own folder). Mode dlib tracks the subject (pipeline/face/landmarks.py): the largest face
of the first frame with one, then the face nearest to the subject's last one; a frame whose
nearest face moved more than ``max_face_shift`` face sizes holds another person's face, which is
not used: a switch, logged as a warning and listed in the summary (``face_switches``). Frames
without the subject get landmarks interpolated from their neighbours (listed in the summary);
frames with several faces are counted. A video with no face at all stops with a message naming
it. Settings: ``datasets.<ds>.sketch`` (size, crop_scale, thickness, canny, predictor,
max_face_shift). ``--contact-sheet`` writes a PNG of frames, landmarks and sketches of one sequence.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from pipeline import datasets
from pipeline.core.cli_help import cli_parser
from pipeline.core.config import Dataset
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_rgb, write_map, write_rgb
from pipeline.core.stage import frames_listed
from pipeline.datasets import Sequence, given
from pipeline.face import landmarks as face_landmarks
from pipeline.face import official_input
from pipeline.face.sketch import crop_landmarks, draw_sketch, sequence_crop

log = logging.getLogger("pipeline.stages.sketch")


def given_landmarks(ds: Dataset, seq: Sequence, table) -> list[face_landmarks.FrameLandmarks]:
    """Mode given: the sequence's landmark JSON (sketch.landmarks_dir/<seq>/, or the dataset
    layout's landmarks-dlib68/<seq>/), one per frame in sorted order, in the frames' pixels."""
    files = datasets.per_frame_files(ds, seq, "landmarks-dlib68", "sketch.landmarks_dir", ds.settings.sketch.landmarks_dir,
                                     len(table), lambda folder, n, more: datasets.files_in_order(folder, {".json"}, n, "landmark JSON", more))
    scale = given.source_to_frames(ds, table)
    return [face_landmarks.read_json(path, scale) for path in files]


def sketch_sequence(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    settings = ds.settings.sketch
    table, _ = given.sequence_manifest(ds, seq)
    frames = [read_rgb(ds.results / path) for path in table.path]
    if settings.mode == "given":
        found = given_landmarks(ds, seq, table)
    else:
        predictor = face_landmarks.predictor_path(settings.predictor)
        found = face_landmarks.track(frames, predictor, settings.max_face_shift)
    points, detected = face_landmarks.fill_gaps(found, str(ds.results / "frames" / seq.name))
    missing = np.nonzero(~detected)[0].tolist()
    no_face = [i for i, f in enumerate(found) if f.faces == 0]
    several = [i for i, f in enumerate(found) if f.faces > 1]
    switches = [i for i, f in enumerate(found) if f.switch]
    if no_face:
        log.info("%s: no face in %d frames %s: landmarks interpolated", seq.name, len(no_face), no_face[:20])
    if several:
        log.info("%s: several faces in %d frames (first %s): the subject's is used", seq.name, len(several),
                 several[:10])
    height, width = frames[0].shape[:2]
    size = settings.size
    (out_dir / "frames").mkdir()
    if settings.style == "official":
        x0, y0, side, size = write_official(out_dir, frames, points, size, str(ds.results / "frames" / seq.name))
    else:
        crop = sequence_crop(points, (width, height), settings.crop_scale)
        x0, y0, side = crop
        for index, (frame, pts) in enumerate(zip(frames, points)):
            cropped = cv2.resize(frame[y0:y0 + side, x0:x0 + side], (size, size),
                                 interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
            write_rgb(out_dir / "frames" / f"{index:06d}.png", cropped)
            sketch = draw_sketch(crop_landmarks(pts, crop, size), cropped, (size, size), settings.thickness,
                                 tuple(settings.canny))
            write_map(out_dir / f"{index:06d}.png", sketch)
    with open(out_dir / "landmarks.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "detected", "faces"] + [f"{c}{k}" for k in range(68) for c in "xy"])
        for index, (pts, ok, f) in enumerate(zip(points, detected, found)):
            writer.writerow([index, int(ok), f.faces] + [f"{v:.2f}" for v in pts.reshape(-1)])
    (out_dir / "crop.json").write_text(json.dumps({"x0": x0, "y0": y0, "side": side, "size": size}))
    summary = {"frames": len(frames), "detected": int(detected.sum()), "interpolated": missing,
               "several_faces": len(several), "face_switches": switches, "crop": [x0, y0, side]}
    return {**summary, "warnings": [switch_warning(ds, switches, len(frames))]} if switches else summary


def write_official(out_dir: Path, frames: list[np.ndarray], points: np.ndarray, size: int, source: str
                   ) -> tuple[int, int, int, int]:
    """Style official: per frame the official face input (official/NNNNNN.npz, 16 maps), its edge map
    (NNNNNN.png, to look at) and the cropped frame; the crop is the official one around the first
    frame's landmarks (the official test takes it from the first frame it reads). Returns (x0, y0,
    side, the output's width)."""
    box = official_input.crop_box(points[0], (frames[0].shape[1], frames[0].shape[0]))
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        raise InputError(source, f"the first frame's landmarks span no area ({points[0].min(0)} .. "
                                 f"{points[0].max(0)}): no face crop")
    (out_dir / "official").mkdir()
    for index, (frame, pts) in enumerate(zip(frames, points)):
        maps, cropped = official_input.face_input(pts, frame, box, size)
        np.savez_compressed(out_dir / "official" / f"{index:06d}.npz", maps=maps)
        write_map(out_dir / f"{index:06d}.png", maps[..., 0])
        write_rgb(out_dir / "frames" / f"{index:06d}.png", cropped)
    return box[0], box[1], box[2] - box[0], official_input.output_size(box, size)[0]


def switch_warning(ds: Dataset, switches: list[int], total: int) -> str:
    """The warning for frames where the subject was missed and another face found."""
    return (f"the subject's face was missed and another face found (farther than {ds.config_key}.sketch."
            f"max_face_shift = {ds.settings.sketch.max_face_shift} face sizes from the subject's) in "
            f"{frames_listed(switches, total)}; their landmarks are interpolated from the frames around them")


def contact_sheet(ds: Dataset, seq_name: str, output: Path, count: int = 6) -> Path:
    """Rows: cropped frame, frame with landmarks, sketch; ``count`` frames spread over the sequence."""
    folder = ds.results / "sketch" / seq_name
    rows = list(csv.reader(open(folder / "landmarks.csv")))[1:]
    picks = np.linspace(0, len(rows) - 1, count).round().astype(int)
    crop = json.loads((folder / "crop.json").read_text())
    tiles = []
    for index in picks:
        frame = read_rgb(folder / "frames" / f"{index:06d}.png")
        pts = crop_landmarks(np.array(rows[index][3:], np.float32).reshape(68, 2),
                             (crop["x0"], crop["y0"], crop["side"]), crop["size"])
        marked = frame.copy()
        colour = (0, 255, 0) if rows[index][1] == "1" else (255, 128, 0)  # interpolated: orange
        for x, y in pts:
            cv2.circle(marked, (int(round(x)), int(round(y))), 2, colour, -1)
        sketch = cv2.cvtColor(cv2.imread(str(folder / f"{index:06d}.png"), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2RGB)
        column = np.concatenate([frame, marked, sketch], axis=0)
        cv2.putText(column, f"frame {index}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(column)
    write_rgb(output, np.concatenate(tiles, axis=1))
    return output


def model_inputs(ds: Dataset, mode: str) -> dict:
    return {"predictor": str(ds.settings.sketch.predictor)} if mode == "dlib" else {}


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging
    from pipeline.core.stage import sequence_stage_main

    if argv is None:
        import sys

        argv = sys.argv[1:]
    if "--contact-sheet" in argv:
        parser = cli_parser("python -m pipeline.stages.sketch", __doc__)
        add_dataset_args(parser)
        parser.add_argument("--contact-sheet", type=Path, required=True)
        parser.add_argument("--sequence", help="sequence (default: the first)")
        parser.add_argument("--count", type=int, default=6)
        args = parser.parse_args(argv)
        setup_logging(args.verbose)
        ds, _ = dataset_from_args(args)
        name = args.sequence or sorted(p.name for p in (ds.results / "sketch").iterdir()
                                       if p.is_dir() and p.name != "shards" and not p.name.startswith("."))[0]
        print(contact_sheet(ds, name, args.contact_sheet, args.count))
        return
    sequence_stage_main("sketch", __doc__, {"dlib": sketch_sequence, "given": sketch_sequence}, argv,
                        inputs_of=model_inputs)


if __name__ == "__main__":
    main()
