"""Stage 'pose' (task pose): keypoints per frame from a backend, a person-centred crop for the
sequence and OpenPose-style pose maps, results/<ds>/pose/<seq>/.

    python -m pipeline.stages.pose --dataset pose_demo [--sequences ...] [--job-summary OUT.json]

Backends (``datasets.<ds>.pose.mode``), paper section 4 ("poses from OpenPose and DensePose"):
- ``openpose-json``: OpenPose BODY_25 JSON files (``--write_json``) under
  ``pose.openpose_dir/<seq>/``, in the source video's pixels (scaled like the frames here);
- ``mediapipe``: MediaPipe Pose, run by ``python -m pipeline.stages.pose_mediapipe`` in its own
  environment (numpy<2; envs/mediapipe.txt), which writes OpenPose-format JSON under
  results/<ds>/keypoints/<seq>/ in the frames' pixels; this stage reads those;
- ``keypointrcnn``: torchvision's COCO Keypoint R-CNN (registry ``keypointrcnn_resnet50_fpn_coco``,
  or ``pose.weights``), COCO-17 mapped onto BODY_25.
DensePose needs detectron2, which cannot be installed from a registry: precomputed IUV images may
be given in ``pose.densepose_dir/<seq>/`` or, in the imaginaire layout, ``pose_maps-densepose/<seq>/``
(sorted, one per frame) and are cropped beside the maps.

Per sequence: ``NNNNNN.png`` pose map (RGB), ``frames/NNNNNN.png`` the cropped real frame,
``densepose/NNNNNN.png`` where given, ``keypoints.json`` (BODY_25 + hands + face in the output's
pixels, per frame) and ``crop.json``. Frames with no person, several people (the largest is kept)
or a person partly outside the crop are counted in the summary and logged.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from pipeline import datasets
from pipeline.core.config import Dataset
from pipeline.core.errors import InputError, main_guard
from pipeline.core.images import read_rgb, write_rgb
from pipeline.datasets import Sequence, conditions, given
from pipeline.keypoints import openpose_json, skeleton
from pipeline.keypoints.openpose_json import PersonKeypoints

log = logging.getLogger("pipeline.stages.pose")


def openpose_keypoints(ds: Dataset, seq: Sequence, table) -> list[PersonKeypoints]:
    """The sequence's OpenPose JSON (pose.openpose_dir/<seq>/, or the dataset layout's
    poses-openpose/<seq>/), mapped from the source's pixels to the frames'."""
    files = datasets.per_frame_files(ds, seq, "poses-openpose", "pose.openpose_dir", ds.settings.pose.openpose_dir,
                                     len(table), openpose_json.frame_files)
    sx, sy, dx, dy = given.source_to_frames(ds, table)
    people = []
    for path in files:
        person = openpose_json.read_frame(path) if path else PersonKeypoints(None, [None, None], None, 0)
        people.append(person.scaled(sx, sy, dx, dy))
    return people


def mediapipe_keypoints(ds: Dataset, seq: Sequence, table) -> list[PersonKeypoints]:
    folder = ds.results / "keypoints" / seq.name
    if not folder.is_dir():
        raise InputError(folder, "missing: mode 'mediapipe' reads the JSON that `python -m pipeline.stages.pose_mediapipe` "
                                 "writes (rule pose_mediapipe, its own environment: make setup-mediapipe)")
    return [openpose_json.read_frame(p) if p else PersonKeypoints(None, [None, None], None, 0)
            for p in openpose_json.frame_files(folder, len(table))]


@functools.lru_cache(maxsize=1)
def _keypointrcnn(weights: str | None):
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    from pipeline.core.weights import DEFAULT_ENTRIES, load_into, load_state_dict

    entry = DEFAULT_ENTRIES["keypointrcnn_resnet50_fpn_coco"]
    model = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    load_into(model, load_state_dict(entry, user_path=weights), weights or entry.file)
    return model.eval()


def keypointrcnn_keypoints(ds: Dataset, seq: Sequence, table) -> list[PersonKeypoints]:
    import torch

    from pipeline.core.devices import pick_device

    settings = ds.settings.pose
    device = pick_device(settings.device)
    model = _keypointrcnn(settings.weights).to(device)
    people = []
    for path in table.path:
        image = torch.from_numpy(read_rgb(ds.results / path)).permute(2, 0, 1).float().div(255).to(device)
        with torch.inference_mode():
            out = model([image])[0]
        keep = out["scores"] > 0.7
        if not keep.any():
            people.append(PersonKeypoints(None, [None, None], None, 0))
            continue
        boxes = out["boxes"][keep]
        largest = int(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).argmax())
        points = out["keypoints"][keep][largest].cpu().numpy().astype(np.float32)
        points[:, 2] = torch.sigmoid(out["keypoints_scores"][keep][largest]).cpu().numpy() * (points[:, 2] > 0)
        people.append(PersonKeypoints(skeleton.from_coco17(points), [None, None], None, int(keep.sum())))
    return people


BACKENDS = {"openpose-json": openpose_keypoints, "mediapipe": mediapipe_keypoints, "keypointrcnn": keypointrcnn_keypoints}


def _densepose_files(ds: Dataset, seq: Sequence, count: int) -> list[Path] | None:
    """The sequence's DensePose IUV images, one per frame (pose.densepose_dir/<seq>/ or the layout's
    pose_maps-densepose/<seq>/), or None for a dataset without them."""
    if not conditions.has_densepose(ds):
        return None
    return datasets.per_frame_files(ds, seq, "pose_maps-densepose", "pose.densepose_dir", ds.settings.pose.densepose_dir,
                                    count, lambda folder, n, more: datasets.files_in_order(folder, {".png"}, n, "DensePose IUV", more))


def pose_sequence(ds: Dataset, seq: Sequence, out_dir: Path) -> dict:
    settings = ds.settings.pose
    table, _ = given.sequence_manifest(ds, seq)
    people = BACKENDS[settings.mode](ds, seq, table)
    width, height = int(table.width[0]), int(table.height[0])
    out_w, out_h = settings.size
    x0, y0, crop_w, crop_h = skeleton.person_crop([p.body for p in people], (width, height), out_w / out_h,
                                                  settings.crop_scale)
    sx, sy = out_w / crop_w, out_h / crop_h
    densepose = _densepose_files(ds, seq, len(table))
    if densepose:
        (out_dir / "densepose").mkdir()
    (out_dir / "frames").mkdir()
    records, no_person, several, outside = [], [], 0, []
    for index, (path, person) in enumerate(zip(table.path, people)):
        frame = read_rgb(ds.results / path)[y0:y0 + crop_h, x0:x0 + crop_w]
        write_rgb(out_dir / "frames" / f"{index:06d}.png", cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA))
        moved = person.scaled(sx, sy, -x0 * sx, -y0 * sy)
        if moved.body is None or (moved.body[:, 2] > 0.05).sum() == 0:
            no_person.append(index)
        else:
            shown = moved.body[moved.body[:, 2] > 0.05, :2]
            if ((shown < 0) | (shown >= [out_w, out_h])).any():
                outside.append(index)
        several += person.people > 1
        pose_map = skeleton.render((out_w, out_h), moved.body, moved.hands, moved.face, settings.thickness)
        write_rgb(out_dir / f"{index:06d}.png", pose_map)
        if densepose:
            iuv = read_rgb(densepose[index])[y0:y0 + crop_h, x0:x0 + crop_w]
            write_rgb(out_dir / "densepose" / f"{index:06d}.png",
                      cv2.resize(iuv, (out_w, out_h), interpolation=cv2.INTER_NEAREST))
        records.append({"body": None if moved.body is None else np.round(moved.body, 2).tolist(),
                        "hands": [None if h is None else np.round(h, 2).tolist() for h in moved.hands],
                        "face": None if moved.face is None else np.round(moved.face, 2).tolist(),
                        "people": person.people})
    if len(no_person) == len(table):
        raise InputError(ds.results / "frames" / seq.name, f"no person found in any of its {len(table)} frames "
                                                            f"(pose backend {settings.mode})")
    if no_person:
        log.info("%s: no person in %d frames (first %s): empty pose maps", seq.name, len(no_person), no_person[:10])
    if outside:
        log.info("%s: the person is partly outside the crop in %d frames (first %s)", seq.name, len(outside), outside[:10])
    (out_dir / "keypoints.json").write_text(json.dumps({"format": "BODY_25", "frames": records}))
    (out_dir / "crop.json").write_text(json.dumps({"x0": x0, "y0": y0, "width": crop_w, "height": crop_h,
                                                   "size": [out_w, out_h]}))
    return {"frames": len(table), "with_person": len(table) - len(no_person), "no_person": no_person,
            "several_people": int(several), "partly_outside": len(outside), "crop": [x0, y0, crop_w, crop_h]}


def model_inputs(ds: Dataset, mode: str) -> dict:
    if mode == "mediapipe":
        folder = ds.results / "keypoints"
        return {"keypoints": sorted(p.name for p in folder.glob("*/done.json")) if folder.is_dir() else None}
    return {}


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.core.stage import sequence_stage_main

    sequence_stage_main("pose", __doc__, {m: pose_sequence for m in BACKENDS}, argv,
                        inputs_of=model_inputs)


if __name__ == "__main__":
    main()
