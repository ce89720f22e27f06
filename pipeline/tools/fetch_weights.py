"""``python -m pipeline.tools.fetch_weights``: list the pretrained-weights registry and fetch its files.

    python -m pipeline.tools.fetch_weights list            # every entry: file, present / missing, licence
    python -m pipeline.tools.fetch_weights fetch vgg19     # download + verify into the cache (needs network)

The registry itself is pipeline/core/weights.py, which the stages and the model share. The cache folder is resources/weights/ or $VID2VID_WEIGHTS.
"""

from __future__ import annotations

import sys

from pipeline.core.cli_help import cli_parser
from pipeline.core.weights import (
    DEFAULT_ENTRIES,
    WeightsError,
    cache_path,
    resolve,
    verify,
)


def status(entry, cache_dir=None) -> str:
    path = cache_path(entry, cache_dir)
    if not path.is_file():
        return "missing"
    try:
        verify(entry, path)
    except WeightsError:
        return "WRONG HASH"
    return "present"


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("python -m pipeline.tools.fetch_weights", __doc__)
    parser.add_argument("--cache", help="cache folder (default: $VID2VID_WEIGHTS or resources/weights)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show every registry entry")
    fetch = commands.add_parser("fetch", help="download and verify entries into the cache")
    fetch.add_argument("names", nargs="+", choices=sorted(DEFAULT_ENTRIES), help="registry entries to fetch")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in sorted(DEFAULT_ENTRIES.items()):
            print(f"{name:12s} {status(entry, args.cache):10s} {cache_path(entry, args.cache)}")
            print(f"{'':12s} {entry.url}")
            print(f"{'':12s} {entry.description}; licence: {entry.licence}")
        return 0
    failed = 0
    for name in args.names:
        try:
            print(f"{name}: {resolve(DEFAULT_ENTRIES[name], cache_dir=args.cache)}")
        except WeightsError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
