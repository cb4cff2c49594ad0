"""Real servers for the integration and gateway tests, each a child process started through the same
launcher code `tonestream up` uses.

- `mongo_server`: the embedded SecantusDB catalog server (session);
- `s3_server`: moto's S3-compatible server, for the S3 blob adapter (session);
`unique_name` makes database, collection and bucket names that no other test uses, so tests can
share the session's servers without seeing each other's data.
"""

from __future__ import annotations

import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from stores.embedded_mongo import start_embedded_mongo
from streams.server import ChildService, free_port


@pytest.fixture(scope="session")
async def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """URI of a SecantusDB server with its storage in a temp dir."""
    server = await start_embedded_mongo(tmp_path_factory.mktemp("mongo"))
    try:
        yield server.uri
    finally:
        await server.stop()


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
async def s3_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Endpoint URL (`http://127.0.0.1:PORT`) of a moto S3 server; any credentials work."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    async def ready() -> bool:
        return _answers_http(f"{endpoint}/moto-api/")

    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    server = await ChildService.start("moto", argv, log_path, ready)
    try:
        yield endpoint
    finally:
        await server.stop()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """`unique_name("tracks")` → "tracks-1a2b3c4d5e6f": lowercase, valid as a Mongo database or
    collection name and as an S3 bucket name."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make
