"""Which split each sequence of a folder-per-sequence dataset (video folders, imaginaire layouts)
is in: the names in ``val_videos`` are val and the rest train, or a ``split_file`` (JSON or YAML,
``{train: [names], val: [names]}``) names every split's sequences and the others are left out
(the paper's FaceForensics split, config/splits/faceforensics.yaml)."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import Dataset
from pipeline.core.errors import InputError
from pipeline.datasets import Sequence

SPLITS = ("train", "val", "test")


def read_split_file(path: str | Path) -> dict[str, str]:
    """{sequence name: split} from a split file; InputError naming it when it is malformed."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read the split file ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError(path, "expected a mapping of split names to lists of sequence names, e.g. "
                               "{train: [000, 001], val: [002]}")
    unknown = sorted(set(data) - set(SPLITS))
    if unknown:
        raise InputError(path, f"unknown splits {unknown} (have {list(SPLITS)})")
    found: dict[str, str] = {}
    for split, names in data.items():
        for name in map(str, names):
            if name in found:
                raise InputError(path, f"sequence {name} is in both {found[name]} and {split}")
            found[name] = split
    return found


def assign(ds: Dataset, names: list[str]) -> list[Sequence]:
    """The sequences ``names`` found, each in its split, of the dataset's configured splits."""
    if ds.settings.split_file:
        chosen = read_split_file(ds.settings.split_file)
        missing = sorted(set(chosen) - set(names))
        if missing:
            raise InputError(ds.settings.split_file, f"names {len(missing)} sequences with no video under {ds.root} "
                                                     f"(e.g. {missing[:5]}; the videos there are e.g. {sorted(names)[:3]})")
        seqs = [Sequence(name, chosen[name]) for name in names if name in chosen]
    else:
        val = set(ds.settings.val_videos)
        seqs = [Sequence(name, "val" if name in val else "train") for name in names]
    return [s for s in seqs if s.split in ds.settings.splits]
