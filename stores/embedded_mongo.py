"""The embedded catalog server: SecantusDB (a MongoDB wire-protocol server) as a child process.

`tonestream up` and the tests use it when no `mongo_url` is configured, so the catalog runs the
same PyMongo code as production. It is a separate process (never in-process) so its storage
engine never competes with the event loop.

The URI carries two options:
- `directConnection=true`: SecantusDB advertises itself as the primary of a single-node replica
  set named `secantus` whose host is the `--host` it was given. Without a direct connection the
  driver would re-resolve that advertised host, which breaks when the server binds 0.0.0.0.
- `serverMonitoringMode=poll`: with the default streaming mode PyMongo's async client opens an
  extra round-trip-time monitor connection right after connecting, and closing the client while
  that connect is in flight leaks the socket (a ResourceWarning: an error under our warnings
  policy). Fast failover detection is pointless for one embedded node, so poll.

The server runs with `--sync-on-commit`: without it an acknowledged write can be lost when the
process is killed (measured: 4–37 of 300 acknowledged inserts gone after SIGKILL). The status
projection acks a progress event once its catalog write is acknowledged, so a lost write was a
status lost for good (tracks stuck at `features` after `tonestream up` was killed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from streams.server import ChildService, accepts_tcp, free_port, venv_binary

# An explicit (empty) config file turns off secantusd's auto-discovery of ./secantusd.toml,
# ~/.secantus/ and /etc/secantus/, so a stray file there (say, one enabling auth) cannot change
# the embedded server; the command-line flags say everything.
_CONFIG_TEXT = "# written by tonestream: all settings are command-line flags\n"


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to `host` (a wildcard means loopback)."""
    return "127.0.0.1" if host in {"0.0.0.0", ""} else host


def mongo_uri(host: str, port: int) -> str:
    options = "directConnection=true&serverMonitoringMode=poll"
    return f"mongodb://{_connect_host(host)}:{port}/?{options}"


async def _answers_ping(uri: str) -> bool:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=1000
    )
    try:
        await client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        await client.close()
    return True


def _write_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_CONFIG_TEXT)


class EmbeddedMongo:
    """A running SecantusDB child process and the URI to reach it."""

    def __init__(self, service: ChildService, uri: str) -> None:
        self.service = service
        self.uri = uri

    async def stop(self) -> None:
        await self.service.stop()


async def start_embedded_mongo(
    data_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> EmbeddedMongo:
    """Start `secantusd-py` storing under `data_dir/db`; returns once it answers a ping."""
    port = port or free_port(_connect_host(host))
    uri = mongo_uri(host, port)
    config_path = data_dir / "secantusd.toml"
    await asyncio.to_thread(_write_config, config_path)
    argv = [
        venv_binary("secantusd-py"),
        "--config", str(config_path),
        "--host", host,
        "--port", str(port),
        "--storage-path", str(data_dir / "db"),
        "--log-level", "WARNING",
        "--sync-on-commit",  # an acknowledged write survives a SIGKILL (see the docstring)
    ]  # fmt: skip

    async def ready() -> bool:
        # the port first: a driver client closed while still retrying connects can leak a socket
        return await accepts_tcp(_connect_host(host), port) and await _answers_ping(uri)

    service = await ChildService.start("secantusd-py", argv, data_dir / "secantusd.log", ready)
    return EmbeddedMongo(service, uri)
