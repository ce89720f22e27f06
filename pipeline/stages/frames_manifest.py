"""Stage 'frames_manifest': the dataset's frame manifest from the per-shard ones (pipeline/datasets/manifest.py).

    python -m pipeline.stages.frames_manifest OUT.csv IN.csv ...

Refuses a sequence that appears in more than one shard manifest.
"""

from __future__ import annotations

from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import main_guard
from pipeline.datasets.manifest import concat, write


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m pipeline.stages.frames_manifest", __doc__)
    parser.add_argument("output", help="the dataset manifest to write")
    parser.add_argument("inputs", nargs="+", help="per-shard manifests")
    args = parser.parse_args(argv)
    write(concat(args.inputs), args.output)


if __name__ == "__main__":
    main()
