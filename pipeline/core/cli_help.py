"""What every command line shows under ``--help``: the first paragraph of its module's docstring,
whole (a description cut at the docstring's first line break stops mid-sentence), and the usage
lines below it as they are written. Imports nothing but argparse, so the MediaPipe stage, which
runs in its own environment, uses it too.
"""

from __future__ import annotations

import argparse


def description(doc: str) -> str:
    """The first paragraph of ``doc`` as one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def cli_parser(prog: str, doc: str, **kwargs) -> argparse.ArgumentParser:
    """An ArgumentParser for ``prog`` described by its module docstring ``doc``: the first
    paragraph as the description, the rest (usage examples, details) after the options."""
    rest = doc.strip().partition("\n\n")[2].strip()
    return argparse.ArgumentParser(prog=prog, description=description(doc), epilog=rest or None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
