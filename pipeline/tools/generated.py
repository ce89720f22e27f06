"""What the generators of committed files share (``run_schema``, ``config_sections``): the CLI
that writes the rendered text to its default path, or to ``--output``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def write_main(prog: str, doc: str, default: Path, render: Callable[[], str], argv: list[str] | None = None) -> None:
    """``python -m <prog> [--output PATH]``: write ``render()`` to ``default`` (or PATH)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.splitlines()[0])
    parser.add_argument("--output", type=Path, default=default)
    args = parser.parse_args(argv)
    args.output.write_text(render())
    print(f"wrote {args.output}")
