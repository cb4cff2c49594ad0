"""`tracks`, `show`, `similar`, `delete`: the catalog, one track, its neighbours, removal."""

from __future__ import annotations

import argparse

from cli import render
from cli.client import Gateway
from cli.commands.common import (
    Commands,
    add_filters,
    at_least,
    client,
    client_options,
    filter_params,
)
from schemas.api import TrackSummary
from stores.catalog_order import COLUMNS, SORT_NAMES

PAGE_SIZE = 100


async def _duplicate_groups(gateway: Gateway, args: argparse.Namespace) -> int:
    groups = (await gateway.duplicate_groups()).groups
    if args.json:
        for group in groups:
            render.json_line(group)
        return 0
    console = render.stdout()
    for number, group in enumerate(groups, 1):
        console.print(f"duplicate group {number}: {len(group)} tracks, one recording")
        console.print(render.track_table(group))
    console.print(f"{len(groups)} duplicate group{'s' if len(groups) != 1 else ''}")
    return 0


async def _tracks(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.duplicates:
        return await _duplicate_groups(gateway, args)
    base = filter_params(args)
    for name in ("q", "status", "sort"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    found: list[TrackSummary] = []
    cursor: str | None = None
    while True:
        wanted = PAGE_SIZE if args.limit == 0 else min(PAGE_SIZE, args.limit - len(found))
        params = base | {"limit": wanted} | ({"cursor": cursor} if cursor else {})
        page = await gateway.tracks(params)
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None or not page.items or (args.limit and len(found) >= args.limit):
            break
    if args.json:
        for track in found:
            render.json_line(track)
        return 0
    console = render.stdout()
    if not found:
        console.print("no tracks")
        return 0
    console.print(render.track_table(found))
    more = " (more: --limit N, or --limit 0 for all)" if cursor else ""
    console.print(f"{len(found)} track{'s' if len(found) != 1 else ''}{more}")
    return 0


async def _show(gateway: Gateway, args: argparse.Namespace) -> int:
    track = await gateway.track(args.id)
    if args.json:
        render.json_line(track)
    else:
        render.track_details(render.stdout(), track)
    return 0


async def _similar(gateway: Gateway, args: argparse.Namespace) -> int:
    results = await gateway.similar(args.id, {"k": args.k} | filter_params(args))
    if args.json:
        render.json_line(results)
    else:
        render.search_results(render.stdout(), results)
    return 0


async def _delete(gateway: Gateway, args: argparse.Namespace) -> int:
    for track_id in args.ids:
        await gateway.delete(track_id)
        if not args.json:
            print(f"deleted {track_id}")
    return 0


def register(commands: Commands) -> None:
    options = client_options()
    tracks = commands.add_parser("tracks", parents=[options], help="list tracks")
    add_filters(tracks)
    tracks.add_argument("-q", "--query", dest="q", help="text in the file name or tags")
    tracks.add_argument("--status", help="e.g. indexed, failed, decode")
    tracks.add_argument(
        "--sort",
        choices=SORT_NAMES,
        metavar="COLUMN",
        help=f"order by {', '.join(COLUMNS)}; a leading - reverses (default -created_at)",
    )
    tracks.add_argument(
        "--duplicates",
        action="store_true",
        help="groups of tracks holding one recording (other encodes, bit rates, trims)",
    )
    tracks.add_argument(
        "--limit", type=at_least(0), default=50, help="how many tracks (default 50; 0 for all)"
    )
    tracks.set_defaults(run=client(_tracks))

    show = commands.add_parser("show", parents=[options], help="everything known about a track")
    show.add_argument("id", help="track id")
    show.set_defaults(run=client(_show))

    similar = commands.add_parser("similar", parents=[options], help="tracks that sound alike")
    similar.add_argument("id", help="track id")
    similar.add_argument("-k", "--k", type=at_least(1), default=10, help="how many (default 10)")
    add_filters(similar)
    similar.set_defaults(run=client(_similar))

    delete = commands.add_parser("delete", parents=[options], help="delete tracks everywhere")
    delete.add_argument("ids", nargs="+", metavar="ID", help="track id")
    delete.set_defaults(run=client(_delete))
