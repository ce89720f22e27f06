"""The layout's one dependency rule (docs/architecture.md): model/ imports no pipeline stage."""

from __future__ import annotations

import ast

from tests.conftest import REPO

SHARED_CORE = {"pipeline.atomic", "pipeline.progress", "pipeline.cityscapes_labels"}  # what model/ may use


def test_model_imports_no_pipeline_stage():
    imported = {}
    for path in sorted((REPO / "model").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name == "pipeline" or name.startswith("pipeline."):
                    imported.setdefault(name, []).append(path.name)
    assert set(imported) <= SHARED_CORE, {k: v for k, v in imported.items() if k not in SHARED_CORE}
