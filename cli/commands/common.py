"""What the client commands share: gateway options, search filters, `--json`, and running an
async command against the gateway."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import msgspec

from cli.client import Gateway
from cli.connection import API_KEY_ENV, DEFAULT_URL, URL_ENV, resolve
from cli.credentials import FILENAME as CREDENTIALS_FILE
from schemas.api import SearchFilters
from schemas.payloads import KEY_NAMES, MODES
from schemas.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Run = Callable[[argparse.Namespace, Settings], int]
ClientCommand = Callable[[Gateway, argparse.Namespace], Awaitable[int]]


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more")
        return value

    return parse


def client_options() -> argparse.ArgumentParser:
    """A parent parser with --url, --api-key and --json, for every command that calls the API."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("gateway")
    group.add_argument(
        "--url",
        help=f"gateway URL (default: ${URL_ENV}, else the URL `tonestream up` saved in "
        f"<data dir>/{CREDENTIALS_FILE}, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-key",
        help=f"API key or access token (default: ${API_KEY_ENV}, else the key `tonestream up` "
        "saved)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, one document per line")
    return parser


def add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--tempo-min", type=float, metavar="BPM")
    group.add_argument("--tempo-max", type=float, metavar="BPM")
    group.add_argument("--duration-min", type=float, metavar="SECONDS")
    group.add_argument("--duration-max", type=float, metavar="SECONDS")
    group.add_argument("--key", choices=KEY_NAMES, metavar="KEY", help="C C# D … A# B")
    group.add_argument("--mode", choices=MODES)
    group.add_argument("--mood")
    group.add_argument("--genre")
    group.add_argument("--instruments", metavar="LABEL", help="e.g. piano, strings, drums")
    group.add_argument(
        "--vocals", metavar="LABEL", help="female vocals, male vocals, choir, singing, instrumental"
    )


def filters(args: argparse.Namespace) -> SearchFilters:
    names = (field.name for field in msgspec.structs.fields(SearchFilters))
    return SearchFilters(**{name: getattr(args, name) for name in names})


def filter_params(args: argparse.Namespace) -> dict[str, str | int | float]:
    """The filters as query parameters (only those given)."""
    given: dict[str, str | int | float] = msgspec.structs.asdict(filters(args))
    return {name: value for name, value in given.items() if value is not None}


def client(command: ClientCommand) -> Run:
    """`command` run against the gateway the options and environment point at."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        connection = resolve(settings, args.url, args.api_key)

        async def call() -> int:
            async with Gateway(connection) as gateway:
                return await command(gateway, args)

        return asyncio.run(call())

    return run
