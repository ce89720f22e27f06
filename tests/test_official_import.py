"""Importing NVIDIA's pretrained vid2vid models (pipeline/tools/import_official.py, model/official.py).

tests/data/official_manifest.json lists the parameter names and shapes of every official file, as
NVIDIA/vid2vid's own networks (models/networks.py, built with the test scripts' options) save them:
facts of the format. The full models are large (label2city_2048's G0 alone has 411 M parameters),
so their mapping is checked on meta tensors; files, synthesis and the errors on a small preset of
the same structure."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.official import OfficialFirstFrames, OfficialVid2VidGenerator
from model.synthesis import Synthesizer
from pipeline.tools import import_official as importer

MANIFEST = json.loads((Path(__file__).parent / "data" / "official_manifest.json").read_text())


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


# a preset of the street models' structure at a size a test can write and run
SMALL = {
    "model": dataclasses.replace(importer.MODELS["label2city_1024_g1"]["model"], ngf=4, n_blocks=2, n_blocks_local=1),
    "first": {"folder": "label2city_single", "file": "latest_net_G_small.pth",
              "spec": {"kind": "local", "input_nc": 35, "ngf": 4, "n_downsample": 2, "n_blocks": 1,
                       "n_local_enhancers": 1, "n_blocks_local": 1}},
    "size": (64, 32), "weights": "vid2vid_label2city_g1",
}


@pytest.fixture
def small_official(tmp_path, monkeypatch):
    """The small preset's official files (random weights, with batch-norm statistics as the
    official files hold them) and the modules they were made from."""
    monkeypatch.setitem(importer.MODELS, "small", SMALL)
    torch.manual_seed(0)
    generator = OfficialVid2VidGenerator(SMALL["model"])
    first = OfficialFirstFrames(SMALL["first"]["spec"], 35)
    for p in list(generator.parameters()) + list(first.parameters()):
        p.data.normal_(0, 0.3)
    modules = list(generator.scales) + [first.net]
    for module, path in zip(modules, importer.source_files("small", tmp_path)):
        state = {importer.official_name(k): v.clone() for k, v in module.state_dict().items()}
        for name, layer in module.named_modules():
            if isinstance(layer, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)):
                official = importer.official_name(name + ".")
                state[official + "running_mean"] = torch.randn(layer.num_features)
                state[official + "running_var"] = torch.rand(layer.num_features) + 0.5
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
    return tmp_path, generator.eval(), first.eval()


def street_clip(frames=5, h=32, w=64):
    rng = np.random.default_rng(0)
    labels = [np.kron(rng.integers(0, 34, (h // 8, w // 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
              for _ in range(frames)]
    for t, lab in enumerate(labels):
        lab[8:24, 4 + 4 * t:24 + 4 * t] = 26
    return labels, [lab.astype(np.int32) * 1000 for lab in labels]


def test_the_imported_model_synthesizes_as_the_networks_it_was_made_from(small_official):
    folder, generator, first = small_official
    checkpoint = importer.import_official("small", folder)
    assert set(checkpoint["official"]["sources"]) == {str(p) for p in importer.source_files("small", folder)}
    synth = Synthesizer(checkpoint, torch.device("cpu"))
    labels, instances = street_clip()
    made = list(synth.frame_tensors(labels, instances))
    # the same by hand: first frames from the single-image generator, then each scale fed its own
    # previous outputs (the first frames pooled to every scale)
    semantic = [s for s, _ in synth._street_inputs(labels, instances, 0, set(), None)]
    with torch.no_grad():
        expected = [first(s).frame for s in semantic[:2]]
        history = [generator.pyramid(f) for f in expected]
        for t in range(2, len(labels)):
            previous = [torch.cat([h[s] for h in history], 1) for s in range(3)]
            out = generator(torch.cat(semantic[t - 2:t + 1], 1), previous)
            expected.append(out.frame)
            history = history[1:] + [out.pyramid]
    assert [torch.equal(a, b) for a, b in zip(made, expected)] == [True] * len(labels)
    assert float(torch.cat(made).std()) > 0.05  # not a constant image


def test_the_import_cli_writes_a_checkpoint_synthesize_takes(small_official, tmp_path, small_cache):
    folder, _, _ = small_official
    out = tmp_path / "final.pt"
    assert importer.main(["--model", "small", "--checkpoints", str(folder), "--out", str(out)]) == 0
    from model.synthesis import synthesize

    written = synthesize(out, [str(small_cache[1])], "val", tmp_path / "synth", device="cpu")
    assert written and all(p.is_file() for p in written)
    summary = json.loads((tmp_path / "synth" / "synthesis.json").read_text())
    assert summary["first_frames"] == "image"


def test_a_truncated_missing_or_foreign_file_stops_the_import_naming_it(small_official, tmp_path, capsys):
    folder, _, _ = small_official
    files = importer.source_files("small", folder)
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # a download cut short
    files[1].unlink()
    torch.save({"model.1.weight": torch.zeros(3)}, files[2])  # another network's file
    out = tmp_path / "final.pt"
    assert importer.main(["--model", "small", "--checkpoints", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {files[0]}: not a loadable PyTorch state dict" in err
    assert f"error: {files[1]}: missing (it is in the official checkpoints zip" in err
    assert f"error: {files[2]}: unexpected key model.1.weight" in err
    assert f"error: {files[2]}: missing key model_down_seg.1.weight" in err
    assert not out.exists()
