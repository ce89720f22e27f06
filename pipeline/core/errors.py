"""The one exception type for bad input, and how stage CLIs report it.

A stage that meets bad input (an unreadable file, a wrong shape, a missing folder) raises
:class:`InputError` with a message that names the file and what is wrong; ``main_guard`` turns it
into one line on stderr and exit status 2, with no traceback, so Snakemake logs stay readable.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path


class InputError(Exception):
    """Bad input: the message names the file (or config key) and what is wrong."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def remake_advice(path: str | Path) -> str:
    """How to make a damaged or missing output again, said so that it works as printed: Snakemake
    makes a file again only when it is the target (a missing intermediate whose results exist is
    'Nothing to be done'), and an existing one only when forced."""
    return (f"make it again with `snakemake --cores 2 --force {path}`, then run your target again "
            "(what was made from it follows)")


class OutputError(InputError):
    """An output could not be written (the disk full, a file-size limit): reported like bad input,
    naming the file; nothing of it was kept (pipeline/core/atomic.py)."""


def main_guard(main):
    """Decorator for stage ``main()`` functions: InputError -> message on stderr, exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as err:
            logging.getLogger("pipeline").error("%s", err)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper
