"""The embedded stack for a benchmark: nats-server, the Mongo-protocol server and the worker with
every stage in this process (the `tonestream up` shape), plus a memory/CPU probe of the tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import psutil
from nats.aio.client import Client

from handlers.worker import Worker
from schemas.settings import Settings, settings_from_env
from stores.blobs import LocalBlobStore
from stores.embedded_mongo import start_embedded_mongo
from streams.names import Stage
from streams.publish import EventPublisher
from streams.server import EmbeddedNats
from streams.topology import ensure_topology


@dataclass
class Stack:
    settings: Settings
    nc: Client
    publisher: EventPublisher
    blobs: LocalBlobStore
    worker: Worker


@contextlib.asynccontextmanager
async def embedded_stack(data: Path, **overrides: object) -> AsyncIterator[Stack]:
    settings = settings_from_env({}, data_dir=str(data), clip_enabled=False, **overrides)
    server = await EmbeddedNats.start(data / "nats")
    mongo = await start_embedded_mongo(data / "mongo")
    nc = await nats.connect(server.url)
    worker = Worker(settings, list(Stage), server.url, mongo.uri)
    try:
        await ensure_topology(nc.jetstream(), settings)
        await worker.start()
        yield Stack(
            settings, nc, EventPublisher(nc.jetstream()), LocalBlobStore(data / "blobs"), worker
        )
    finally:
        await worker.stop()
        await nc.close()
        await mongo.stop()
        await server.stop()


@dataclass
class ProcessProbe:
    """Samples RSS of this process and its children; CPU time of the whole tree."""

    interval_s: float = 0.1
    peak_rss: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _cpu_start: float = 0.0
    _wall_start: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def _tree(self) -> list[psutil.Process]:
        me = psutil.Process(os.getpid())
        return [me, *me.children(recursive=True)]

    def _cpu(self) -> float:
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    async def _sample(self) -> None:
        while True:
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    name = "main" if proc.pid == os.getpid() else f"{proc.name()}[{proc.pid}]"
                    rss = proc.memory_info().rss
                    self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self.peak_rss.clear()
        self._cpu_start, self._wall_start = self._cpu(), time.perf_counter()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        self.cpu_s = self._cpu() - self._cpu_start
        self.wall_s = time.perf_counter() - self._wall_start
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def cpu_utilisation(self) -> float:
        """Fraction of all cores busy over the measured interval."""
        return self.cpu_s / (self.wall_s * (os.cpu_count() or 1)) if self.wall_s else 0.0
