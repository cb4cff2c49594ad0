"""`search`: tracks for a text, an image, an audio example or other tracks — any mix of them."""

from __future__ import annotations

import argparse
import asyncio
import base64
from pathlib import Path

from cli import render
from cli.client import Gateway
from cli.commands.common import (
    Commands,
    add_filters,
    at_least,
    client,
    client_options,
    filters,
)
from cli.errors import CliError
from schemas.api import SearchRequest


async def _base64(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        data = await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    return base64.b64encode(data).decode()


async def _search(gateway: Gateway, args: argparse.Namespace) -> int:
    if not (args.text or args.image or args.audio or args.like):
        raise CliError("nothing to search for: give TEXT, --image, --audio or --like")
    request = SearchRequest(
        text=args.text,
        image_base64=await _base64(args.image),
        audio_base64=await _base64(args.audio),
        track_ids=args.like,
        filters=filters(args),
        k=args.k,
    )
    results = await gateway.search(request)
    if args.json:
        render.json_line(results)
    else:
        render.search_results(render.stdout(), results)
    return 0


def register(commands: Commands) -> None:
    search = commands.add_parser(
        "search",
        parents=[client_options()],
        help="search by text, image, audio example or tracks",
        description="Search by any mix of inputs; their rankings are fused.",
    )
    search.add_argument("text", nargs="?", help='e.g. "warm late-night piano"')
    search.add_argument("--image", metavar="FILE", help="a picture whose mood to match")
    search.add_argument("--audio", metavar="FILE", help="an audio example to match")
    search.add_argument(
        "--like", action="append", default=[], metavar="ID", help="a track to match (repeatable)"
    )
    search.add_argument("-k", "--k", type=at_least(1), default=10, help="how many (default 10)")
    add_filters(search)
    search.set_defaults(run=client(_search))
