"""Import NVIDIA's pretrained vid2vid models (the official checkpoints zips) into a checkpoint that
``synthesize`` takes, with the official layout (model/official.py; docs/official_models.md).

    python -m pipeline.tools.import_official --model label2city_2048 --checkpoints checkpoints \\
        --out results/cityscapes/checkpoints/official_label2city_2048/final.pt

``--checkpoints`` is the folder the zips unpack into (the official ``checkpoints/``): the
sequential generator's ``<model>/latest_net_G{s}.pth``, one per spatial scale, and the
single-image generator that makes the first frames (``label2city_single/latest_net_G_<size>.pth``,
``edge2face_single/latest_net_{G,E}.pth`` and its ``features.npy``, read with an unpickler that
admits numpy arrays alone). Every tensor is mapped by name; a missing file, a
file that is not a state dict, a missing or unexpected key or a shape that differs stops the
import with one line per problem naming the key and the file. The checkpoint written records
the model, its options (model/options.py, layout 'official'), how the first frames are made and
the sha256 of every source file (no digest is published for them).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

from model.generator import GeneratorConfig
from model.official import FeatureEncoder, OfficialFirstFrames, OfficialVid2VidGenerator
from model.options import Options, Stage, TrainOptions, to_dict
from pipeline.core.checkpoint_files import save_checkpoint
from pipeline.core.cli import setup_logging
from pipeline.core.cli_help import cli_parser
from pipeline.core.weights import DEFAULT_ENTRIES, sha256_of
from pipeline.face.official_input import PART_LABELS as FACE_PARTS  # features.npy's keys: the parts 0..6

log = logging.getLogger("pipeline.tools.import_official")

_STREET = dict(label_nc=35, n_frames=3, n_blocks=9, norm="batch", n_local=2, n_blocks_local=3, foreground=True,
               foreground_labels=(26,), warp_foreground=False, warp_mode="bilinear", layout="official")
# the official test scripts' options (scripts/street/test_2048.sh, test_g1_1024.sh, scripts/face/
# test_512.sh; the defaults of options/base_options.py: ngf 128, n_blocks 9, n_frames_G 3, fg_labels
# 26) and the single-image generators vid2vid_model_G.load_single_G builds
MODELS = {
    "label2city_2048": {
        "model": GeneratorConfig(ngf=32, n_downsample=3, **_STREET),
        "first": {"folder": "label2city_single", "file": "latest_net_G_2048.pth",
                  "spec": {"kind": "local", "input_nc": 35, "ngf": 32, "n_downsample": 4, "n_blocks": 9,
                           "n_local_enhancers": 1, "n_blocks_local": 3}},
        "size": (2048, 1024), "weights": "vid2vid_label2city",
    },
    "label2city_1024_g1": {
        "model": GeneratorConfig(ngf=32, n_downsample=2, **_STREET),
        "first": {"folder": "label2city_single", "file": "latest_net_G_1024.pth",
                  "spec": {"kind": "global", "input_nc": 35, "ngf": 64, "n_downsample": 4, "n_blocks": 9}},
        "size": (1024, 512), "weights": "vid2vid_label2city_g1",
    },
    "edge2face_512": {
        "model": GeneratorConfig(label_nc=15, n_frames=3, ngf=128, n_downsample=3, n_blocks=9, n_local=0, norm="batch",
                                 foreground=False, warp_mode="bilinear", layout="official"),
        "first": {"folder": "edge2face_single", "file": "latest_net_G.pth",
                  "spec": {"kind": "global_with_features", "input_nc": 15, "output_nc": 3, "nz": 16, "ngf": 64,
                           "n_downsample": 3, "n_blocks": 9}},
        "encoder": {"folder": "edge2face_single", "file": "latest_net_E.pth",
                    "spec": {"input_nc": 3, "output_nc": 16, "ngf": 16, "n_downsample": 4}},
        "reference": {"folder": "edge2face_single", "file": "features.npy"},
        "size": (512, 512), "weights": "vid2vid_edge2face",
    },
}
NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


class OfficialImportError(ValueError):
    """Files that do not hold the official model: every problem, a line each."""


def official_name(name: str) -> str:
    """This project's parameter name -> the official one (residual blocks: body -> conv_block)."""
    return name.replace(".body.", ".conv_block.")


def map_state(official: dict, module: torch.nn.Module, source: str) -> tuple[dict, list[str]]:
    """(the module's state dict from ``official``'s tensors, problems). The norm layers' running
    statistics are accepted and dropped: the official test runs its networks in training mode
    (model/official.py), so they are never used."""
    norms = {name for name, m in module.named_modules()
             if isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d))}
    expected = {official_name(name): (name, tuple(t.shape)) for name, t in module.state_dict().items()}
    state, problems = {}, []
    for key, tensor in official.items():
        layer, _, leaf = key.rpartition(".")
        if key in expected:
            name, shape = expected[key]
            if tuple(tensor.shape) != shape:
                problems.append(f"{source}: {key} has shape {tuple(tensor.shape)}, the official network has {shape}")
            state[name] = tensor
        elif leaf in NORM_STATISTICS and layer.replace(".conv_block.", ".body.") in norms:
            continue
        else:
            problems.append(f"{source}: unexpected key {key} (not in the official network)")
    problems += [f"{source}: missing key {key}" for key in expected if key not in official]
    return state, problems


def read_state(path: Path) -> tuple[dict | None, list[str]]:
    if not path.exists():
        return None, [f"{path}: missing (it is in the official checkpoints zip: docs/official_models.md)"]
    if not path.is_file():
        return None, [f"{path}: not a file"]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or not a torch file
        reason = (str(err).splitlines() or [""])[0]  # a cut-short legacy file: EOFError with no message
        return None, [f"{path}: not a loadable PyTorch state dict ({type(err).__name__}: {reason or 'file ends early'})"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None, [f"{path}: not a state dict of tensors"]
    return state, []


def _mapped(path: Path, module: torch.nn.Module, prefix: str, state: dict, problems: list[str], sources: dict) -> None:
    official, read_problems = read_state(path)
    problems += read_problems
    if official is not None:
        mapped, map_problems = map_state(official, module, str(path))
        problems += map_problems
        state.update({prefix + k: v for k, v in mapped.items()})
        sources[str(path)] = sha256_of(path)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, nothing else: features.npy is a pickle, and a
    pickle can run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not part of an array")
        return getattr(importlib.import_module(module.replace("numpy.core.", "numpy._core.")), name)


def read_reference(path: Path, features: int) -> tuple[torch.Tensor | None, list[str]]:
    """(features.npy as a (7, images, features + 1) tensor, problems): the edge2face single-image
    model's features of its training images per face part, a pickled dict {part: array}."""
    if not path.is_file():
        return None, [f"{path}: missing (it is in the official checkpoints zip: docs/official_models.md)"]
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = read_header(handle)
            if dtype != object:
                return None, [f"{path}: holds a {dtype} array, not features.npy's dict of the face parts' features"]
            stored = _ArraysOnly(handle, encoding="latin1").load()
    except (ValueError, EOFError, pickle.UnpicklingError, TypeError, AttributeError) as err:
        return None, [f"{path}: not a readable features.npy ({type(err).__name__}: {str(err) or 'file ends early'})"]
    table = stored.item() if isinstance(stored, np.ndarray) and stored.shape == () else stored
    if not isinstance(table, dict) or sorted(table) != list(range(FACE_PARTS)):
        keys = sorted(table) if isinstance(table, dict) else type(table).__name__
        return None, [f"{path}: expected a dict of the face parts 0..{FACE_PARTS - 1}, found {keys}"]
    shapes = {np.shape(v) for v in table.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[1] != features + 1:
        return None, [f"{path}: each part needs (images, {features + 1}) features, found shapes {sorted(shapes)}"]
    return torch.from_numpy(np.stack([np.asarray(table[k], np.float64) for k in range(FACE_PARTS)])), []


def source_files(model: str, checkpoints: str | Path) -> list[Path]:
    """The official files of ``model``: G0..G{n_local}, the single-image generator [, E, features.npy]."""
    spec, checkpoints = MODELS[model], Path(checkpoints)
    files = [checkpoints / model / f"latest_net_G{s}.pth" for s in range(spec["model"].n_local + 1)]
    files += [checkpoints / spec[part]["folder"] / spec[part]["file"]
              for part in ("first", "encoder", "reference") if part in spec]
    return files


def import_official(model: str, checkpoints: Path) -> dict:
    """The checkpoint dict of official ``model`` from the unpacked zips under ``checkpoints``."""
    if model not in MODELS:
        raise OfficialImportError(f"--model {model!r}: expected one of {sorted(MODELS)}")
    spec = MODELS[model]
    cfg: GeneratorConfig = spec["model"]
    checkpoints = Path(checkpoints)
    with torch.device("meta"):  # names and shapes only: nothing allocated
        generator = OfficialVid2VidGenerator(cfg)
        first = OfficialFirstFrames(spec["first"]["spec"], cfg.label_nc)
        encoder = FeatureEncoder(**spec["encoder"]["spec"]) if "encoder" in spec else None
    problems: list[str] = []
    sources: dict[str, str] = {}
    state: dict = {}
    files = source_files(model, checkpoints)
    for s, scale in enumerate(generator.scales):
        _mapped(files[s], scale, f"scales.{s}.", state, problems, sources)
    first_state: dict = {}
    _mapped(files[len(generator.scales)], first.net, "net.", first_state, problems, sources)
    if encoder is not None:  # edge2face: E and features.npy make the first frames with the single-image generator
        _mapped(files[-2], encoder, "encoder.", first_state, problems, sources)
        reference, reference_problems = read_reference(files[-1], spec["encoder"]["spec"]["output_nc"])
        problems += reference_problems
        if reference is not None:
            first_state["reference"] = reference
            sources[str(files[-1])] = sha256_of(files[-1])
    if problems:
        raise OfficialImportError("\n".join(problems))
    options = Options(model=cfg, schedule=[Stage(steps=0, n_frames=cfg.n_frames, scales=cfg.n_local)],
                      train=TrainOptions(first_frame="image", ema=0.0), output=f"official_{model}")
    checkpoint = {
        "options": to_dict(options), "generator": state, "first_generator": first_state,
        "first_generator_layout": dict(spec["first"]["spec"]), "first_frames": "image",
        "official": {"model": model, "size": list(spec["size"]), "sources": sources,
                     "weights": dataclasses.asdict(DEFAULT_ENTRIES[spec["weights"]])},
    }
    if encoder is not None:
        checkpoint["feature_encoder_layout"] = dict(spec["encoder"]["spec"])
    return checkpoint


def main(argv=None) -> int:
    parser = cli_parser("python -m pipeline.tools.import_official", __doc__)
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--checkpoints", required=True, type=Path,
                        help="the folder the official zips unpack into (holds <model>/ and the single-image folder)")
    parser.add_argument("--out", required=True, type=Path, help="the checkpoint to write (final.pt)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        checkpoint = import_official(args.model, args.checkpoints)
    except OfficialImportError as err:
        lines = str(err).splitlines()
        shown = lines[:20] + ([f"... and {len(lines) - 20} more"] if len(lines) > 20 else [])
        print("\n".join(f"error: {line}" for line in shown), file=sys.stderr)
        return 2
    save_checkpoint(checkpoint, args.out)
    tensors = len(checkpoint["generator"]) + len(checkpoint["first_generator"])
    log.info("%s: %d tensors from %d files -> %s", args.model, tensors, len(checkpoint["official"]["sources"]), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
