"""The layout's dependency rules (docs/architecture.md): the stages are leaves that nothing imports,
the model uses only the shared core of pipeline/, and pipeline/ holds packages, no loose modules."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO


def _imports(paths: list[Path]) -> dict[str, list[str]]:
    """{imported module: [files]} of the project modules (pipeline.*, model.*) these files import."""
    imported = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("pipeline", "model"):
                    imported.setdefault(name, []).append(str(path.relative_to(REPO)))
    return imported


def test_model_imports_only_the_shared_core_of_pipeline():
    imported = _imports(sorted((REPO / "model").glob("*.py")))
    outside = {k: v for k, v in imported.items() if k.startswith("pipeline.") and not k.startswith("pipeline.core.")}
    assert not outside


def test_no_module_imports_a_stage():
    modules = [p for p in sorted(REPO.glob("pipeline/**/*.py")) + sorted(REPO.glob("model/**/*.py"))
               if "stages" not in p.parts]
    stage_imports = {k: v for k, v in _imports(modules).items() if k.startswith("pipeline.stages")}
    assert not stage_imports


def test_the_core_imports_no_stage_library_or_model():
    imported = _imports(sorted((REPO / "pipeline/core").glob("*.py")))
    # the stage runner lists a dataset's sequences: the one library the core calls
    listing = {"pipeline.datasets", "pipeline.datasets.Sequence"}
    assert not {k: v for k, v in imported.items() if not k.startswith("pipeline.core.") and k not in listing}


def test_pipeline_holds_packages_only():
    loose = [p.name for p in (REPO / "pipeline").glob("*.py") if p.name != "__init__.py"]
    assert not loose
    stages = {p.stem for p in (REPO / "pipeline/stages").glob("*.py")} - {"__init__"}
    assert {"frames", "labels", "instances", "flow", "cache", "train", "synthesize", "covst", "evaluate"} <= stages
