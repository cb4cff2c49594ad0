"""`tonestream`: run Tonestream (`up`, `gateway`, `worker`), talk to its gateway (`ingest`,
`tracks`, `show`, `similar`, `search`, `delete`, `replay`, `status`), or measure files offline
(`analyze`).

Errors end as one line on stderr and exit code 1 (2 for a usage error, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import sys

from cli.commands import admin, analyze, docs, identify, ingest, search, server, tracks
from cli.errors import CliError
from cli.logs import configure_logging
from schemas.settings import get_settings

COMMAND_GROUPS = (server, ingest, tracks, search, identify, admin, analyze, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tonestream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    try:
        code = args.run(args, settings)
    except KeyboardInterrupt:
        code = 130
    except (CliError, OSError, RuntimeError) as exc:
        print(f"tonestream: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
