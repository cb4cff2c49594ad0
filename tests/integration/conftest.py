"""Real servers for the integration tests, each started once per session as a child process.

- `mongo_server`: the embedded SecantusDB catalog server (the same launcher `tonestream up` uses);
- `s3_server`: moto's S3-compatible server, for the S3 blob adapter.
`unique_name` makes database, collection and bucket names that no other test uses, so tests can
share the session's servers without seeing each other's data.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from stores.embedded_mongo import free_port, start_embedded_mongo

SERVER_START_TIMEOUT_S = 30.0


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
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL (`http://127.0.0.1:PORT`) of a moto S3 server; any credentials work."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_http(process, f"{endpoint}/moto-api/", log_path)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_http(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not _answers_http(url):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server for {url} did not start (exit {process.poll()}):\n{tail}")
        time.sleep(0.05)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """`unique_name("tracks")` → "tracks-1a2b3c4d5e6f": lowercase, valid as a Mongo database or
    collection name and as an S3 bucket name."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make
