"""The embedded catalog server: SecantusDB (a MongoDB wire-protocol server) as a child process.

`tonestream up` and the tests use it when no `mongo_url` is configured, so the catalog runs the
same PyMongo code as production. It is a separate process (never in-process) so its storage
engine never competes with the event loop, and it is stopped like any server: SIGTERM, then
SIGKILL if it does not exit.

The URI carries two options:
- `directConnection=true`: SecantusDB advertises itself as the primary of a single-node replica
  set named `secantus` whose host is the `--host` it was given. Without a direct connection the
  driver would re-resolve that advertised host, which breaks when the server binds 0.0.0.0.
- `serverMonitoringMode=poll`: with the default streaming mode PyMongo's async client opens an
  extra round-trip-time monitor connection right after connecting, and closing the client while
  that connect is in flight leaks the socket (a ResourceWarning: an error under our warnings
  policy). Fast failover detection is pointless for one embedded node, so poll.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import AsyncMongoClient

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_STDERR_TAIL_CHARS = 2000
# An explicit (empty) config file turns off secantusd's auto-discovery of ./secantusd.toml,
# ~/.secantus/ and /etc/secantus/, so a stray file there (say, one enabling auth) cannot change
# the embedded server; the command-line flags say everything.
_CONFIG_TEXT = "# written by tonestream: all settings are command-line flags\n"


class EmbeddedMongoError(RuntimeError):
    """The embedded server died or did not answer in time; the message carries its stderr tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def secantusd_executable() -> Path:
    """`secantusd-py` from the running interpreter's bin dir (the venv that has secantusdb)."""
    return Path(sys.executable).parent / "secantusd-py"


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to `host` (a wildcard means loopback)."""
    return "127.0.0.1" if host in {"0.0.0.0", ""} else host


def mongo_uri(host: str, port: int) -> str:
    options = "directConnection=true&serverMonitoringMode=poll"
    return f"mongodb://{_connect_host(host)}:{port}/?{options}"


@dataclass
class EmbeddedMongo:
    """A running SecantusDB child process and the URI to reach it."""

    process: asyncio.subprocess.Process
    uri: str
    stderr_path: Path

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def _stderr_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-_STDERR_TAIL_CHARS:]


def _write_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_CONFIG_TEXT)


async def _accepts_tcp(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _ping(uri: str, timeout_s: float) -> None:
    timeout_ms = max(int(timeout_s * 1000), 100)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms
    )
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


async def _wait_until_ready(server: EmbeddedMongo, host: str, port: int) -> str | None:
    """None once the server answers a ping, else why it did not."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    exited = asyncio.ensure_future(server.process.wait())
    try:
        # Wait for the port before the first ping: a driver client closed while it is still
        # retrying connections can leak a socket.
        while not await _accepts_tcp(host, port):
            if exited.done():
                return f"exited with code {exited.result()} before listening"
            if time.monotonic() > deadline:
                return f"did not listen within {STARTUP_TIMEOUT_S:.0f} s"
            await asyncio.sleep(0.05)
        ping = asyncio.ensure_future(_ping(server.uri, deadline - time.monotonic()))
        await asyncio.wait({ping, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ping.done():  # the port belongs to someone else, and our server died
            ping.cancel()
            await asyncio.gather(ping, return_exceptions=True)
            return f"exited with code {exited.result()} before answering a ping"
        error = ping.exception()
        return None if error is None else f"does not answer a ping ({error})"
    finally:
        exited.cancel()


async def start_embedded_mongo(
    data_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> EmbeddedMongo:
    """Start `secantusd-py` storing under `data_dir` and return once it answers a ping.

    Its stderr goes to `data_dir/secantusd.log` (a file, so a chatty server can never block on a
    full pipe); its WiredTiger files to `data_dir/db`. Raises EmbeddedMongoError with that log's
    tail if it exits or stays silent for STARTUP_TIMEOUT_S.
    """
    port = port or free_port(_connect_host(host))
    stderr_path = data_dir / "secantusd.log"
    config_path = data_dir / "secantusd.toml"
    await asyncio.to_thread(_write_config, config_path)
    with stderr_path.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(secantusd_executable()),
            "--config",
            str(config_path),
            "--host",
            host,
            "--port",
            str(port),
            "--storage-path",
            str(data_dir / "db"),
            "--log-level",
            "WARNING",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    server = EmbeddedMongo(process=process, uri=mongo_uri(host, port), stderr_path=stderr_path)
    try:
        problem = await _wait_until_ready(server, _connect_host(host), port)
    except BaseException:
        await server.stop()
        raise
    if problem is not None:
        await server.stop()
        raise EmbeddedMongoError(
            f"secantusd-py on {host}:{port} {problem}; stderr tail:\n{_stderr_tail(stderr_path)}"
        )
    return server
