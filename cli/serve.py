"""Serving the gateway app with uvicorn inside our own event loop.

The caller owns signals (so `up` can stop the gateway before the stages), the listening socket
is bound here first (so a busy port is one readable error, not a uvicorn exit), open event
streams get a bounded grace period at shutdown, and what start-up made is kept out of the
garbage collector's full passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn
from litestar import Litestar

SHUTDOWN_GRACE_S = 5


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the command running us handles SIGINT/SIGTERM and sets should_exit


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _freeze_heap() -> None:
    """Keep full garbage collections short once the gateway serves.

    A full collection walks every container object in the process, and `tonestream up` holds
    some 400k once started (the app, the stages, torch's modules): measured at 200–350 ms with
    the event loop stopped, every SSE stream and request with it. What exists now lives as long
    as the process, so its garbage is collected once and the rest moved out of the collector's
    sight (gc.freeze); objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def serving(app: Litestar, host: str, port: int) -> AsyncIterator[None]:
    """Serve `app` until the block exits; raises if the app fails to start (its lifespan)."""
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the gateway failed to start (see the log above)")
            await asyncio.sleep(0.05)
        _freeze_heap()
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
