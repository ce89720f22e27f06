"""What the generators of committed files share (``run_schema``, ``config_sections``): the CLI
that writes the rendered text to its default path, or to ``--output``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipeline.core.cli_help import cli_parser


def write_main(prog: str, doc: str, default: Path, render: Callable[[], str], argv: list[str] | None = None) -> None:
    """``python -m <prog> [--output PATH]``: write ``render()`` to ``default`` (or PATH)."""
    parser = cli_parser(f"python -m {prog}", doc)
    parser.add_argument("--output", type=Path, default=default, help="the file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    args.output.write_text(render())
    print(f"wrote {args.output}")
