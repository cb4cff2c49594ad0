"""`docs`: write the HTTP API (OpenAPI) and event log (AsyncAPI) documents as JSON files."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from cli.commands.common import Commands
from schemas.settings import Settings

if TYPE_CHECKING:
    from gateway.services import Services


def _docs(args: argparse.Namespace, settings: Settings) -> int:
    from importlib.metadata import version

    from gateway.app import create_app
    from streams.asyncapi import asyncapi_document

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    openapi = create_app(settings, _no_services).openapi_schema.to_schema()
    documents = {"openapi.json": openapi, "asyncapi.json": asyncapi_document(version("tonestream"))}
    for name, document in documents.items():
        text = msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=2)
        (out / name).write_bytes(text + b"\n")
        print(out / name)
    return 0


def _no_services() -> AbstractAsyncContextManager[Services]:
    raise RuntimeError("the documents are generated without starting the app")


def register(commands: Commands) -> None:
    docs = commands.add_parser("docs", help="write openapi.json and asyncapi.json")
    docs.add_argument("--out", default="docs", help="output folder (default ./docs)")
    docs.set_defaults(run=_docs)
