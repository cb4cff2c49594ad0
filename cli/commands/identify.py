"""`identify`: which of your tracks is this clip, and where in it (acoustic fingerprints)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from cli import render
from cli.client import Gateway
from cli.commands.common import Commands, at_least, client, client_options
from cli.errors import CliError
from schemas.api import IdentifyResult


def identify_table(result: IdentifyResult) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("track", overflow="fold")
    for name in ("offset", "confidence", "hits"):
        table.add_column(name, justify="right")
    for match in result.matches:
        named = " – ".join(filter(None, (match.artist, match.title))) or match.filename
        table.add_row(
            match.track_id,
            escape(named),
            f"{match.offset_s:.2f} s",
            f"{match.confidence:.0%}",
            str(match.hits),
        )
    return table


async def _identify(gateway: Gateway, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        raise CliError(f"cannot read {args.file}: no such file")
    result = await gateway.identify(path, args.limit)
    if args.json:
        render.json_line(result)
    elif result.matched:
        render.stdout().print(identify_table(result))
    else:
        render.stdout().print("no match: not in your library (or too short or noisy to tell)")
    return 0 if result.matched else 1


def register(commands: Commands) -> None:
    identify = commands.add_parser(
        "identify",
        parents=[client_options()],
        help="which of your tracks is this clip (and from where in it)",
        description="Find the track a recording or excerpt comes from by its acoustic "
        "fingerprint; exits 1 when nothing matches (with --json too).",
    )
    identify.add_argument("file", metavar="FILE", help="the clip (any audio format)")
    identify.add_argument(
        "--limit", type=at_least(1), default=5, help="at most this many matches (default 5)"
    )
    identify.set_defaults(run=client(_identify))
