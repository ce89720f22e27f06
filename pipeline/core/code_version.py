"""Code versions for rerun-on-change: a hash of the modules a stage runs (docs/architecture.md, rules).

Each Snakemake rule passes ``code_version("pipeline.stages.<stage>")`` as a param; Snakemake reruns a job
whose params changed, and everything downstream of it. The hash covers the stage module and every
``pipeline.*`` / ``model.*`` module it imports, transitively, read as syntax trees: editing a comment
or the formatting reruns nothing, changing code or a docstring reruns the stages that use it.

The typed config's sections (pipeline/core/sections.py, generated from the schema) are left out:
they describe settings, and the settings a stage reads reach its rule as params of their own, so a
new option in one section reruns the stages that read that section, not every stage.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGES = ("pipeline", "model")
SETTINGS_MODULES = frozenset({"pipeline.core.sections"})  # generated from the schema: see above


def _source_path(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(module: str, tree: ast.AST, is_package: bool) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def module_closure(module: str) -> dict[str, Path]:
    """{module name: source file} of ``module`` and the project modules it imports, transitively."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = None if name in SETTINGS_MODULES else _source_path(name)
        if path is None:
            continue
        seen[name] = path
        # importing a.b.c runs a/__init__.py and a/b/__init__.py too
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        tree = ast.parse(path.read_text(), filename=str(path))
        pending.extend(parents + sorted(_imports(name, tree, path.name == "__init__.py")))
    return seen


@functools.lru_cache(maxsize=None)
def code_version(module: str) -> str:
    """12 hex digits identifying the code ``module`` runs (its syntax trees, not its bytes)."""
    digest = hashlib.sha256()
    for name, path in sorted(module_closure(module).items()):
        digest.update(name.encode())
        digest.update(ast.dump(ast.parse(path.read_text())).encode())
    return digest.hexdigest()[:12]


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or ["pipeline.stages.frames"]:
        closure = module_closure(arg)
        print(f"{arg}: {code_version(arg)} ({len(closure)} modules: {', '.join(sorted(closure))})")
