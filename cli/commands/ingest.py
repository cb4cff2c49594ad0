"""`ingest`: upload files and folders, with live progress and a summary (see cli.ingest)."""

from __future__ import annotations

import argparse

from cli import files, render
from cli.client import Gateway
from cli.commands.common import Commands, at_least, client, client_options
from cli.errors import CliError
from cli.ingest import Ingest, succeeded
from cli.ingest_view import IngestView


async def _ingest(gateway: Gateway, args: argparse.Namespace) -> int:
    paths = files.collect(args.paths)
    if not paths:
        raise CliError(f"no audio files in {', '.join(args.paths)}")
    with IngestView(len(paths), wait=args.wait) as view:
        ingest = Ingest(gateway, view, wait=args.wait, concurrency=args.concurrency)
        results = await ingest.run(paths)
    if args.json:
        for result in results:
            render.json_line(result)
    else:
        render.ingest_summary(render.stdout(), results)
    return 0 if all(succeeded(result, waited=args.wait) for result in results) else 1


def register(commands: Commands) -> None:
    ingest = commands.add_parser(
        "ingest",
        parents=[client_options()],
        help="upload audio files and folders",
        description="Upload files, and the audio files in folders (recursively). Files already "
        "uploaded are not sent again. The exit code is 1 if any file failed.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="a file or a folder")
    ingest.add_argument(
        "--wait", action="store_true", help="return when every file is indexed or failed"
    )
    ingest.add_argument(
        "--concurrency",
        type=at_least(1),
        default=4,
        metavar="N",
        help="files handled at once (default 4)",
    )
    ingest.set_defaults(run=client(_ingest))
