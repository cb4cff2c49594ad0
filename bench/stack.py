"""The embedded stack for a benchmark (`tonestream up` in this process) and a memory/CPU probe
of the process tree."""

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

from cli.up import running_system
from schemas.settings import settings_from_env
from stores.blobs import BlobStore, open_blob_store
from streams.publish import EventPublisher


@dataclass
class Stack:
    nc: Client
    publisher: EventPublisher
    blobs: BlobStore


@contextlib.asynccontextmanager
async def embedded_stack(data: Path) -> AsyncIterator[Stack]:
    """What `tonestream up` runs (CLIP off), plus a client connection to feed it."""
    settings = settings_from_env({}, data_dir=str(data), clip_enabled=False)
    async with running_system(settings) as worker:
        nc = await nats.connect(worker.nats_url)
        try:
            yield Stack(nc, EventPublisher(nc.jetstream()), open_blob_store(settings))
        finally:
            await nc.close()


@dataclass
class ProcessProbe:
    """Samples RSS of this process and its children; CPU time of each process in the tree."""

    interval_s: float = 0.1
    peak_rss: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _wall_start: float = 0.0
    cpu_s: float = 0.0
    cpu_s_by_process: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def _tree(self) -> list[psutil.Process]:
        me = psutil.Process(os.getpid())
        return [me, *me.children(recursive=True)]

    @staticmethod
    def _label(proc: psutil.Process) -> str:
        if proc.pid == os.getpid():
            return "main"
        if any("multiprocessing.spawn" in part for part in proc.cmdline()):
            return f"pool[{proc.pid}]"
        return f"{proc.name()}[{proc.pid}]"

    def peak_mb(self, prefix: str) -> int:
        """The largest peak RSS, in MB, of the processes whose label starts with `prefix`."""
        peaks = [rss for name, rss in self.peak_rss.items() if name.startswith(prefix)]
        return round(max(peaks, default=0) / 2**20)

    def _cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process in the tree, by label."""
        spent = {}
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                spent[self._label(proc)] = times.user + times.system
        return spent

    async def _sample(self) -> None:
        while True:
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss
                    name = self._label(proc)
                    self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self.peak_rss.clear()
        self._cpu_start, self._wall_start = self._cpu(), time.perf_counter()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        # a process started since start() counts from zero; one that ended is not counted
        spent = {name: cpu - self._cpu_start.get(name, 0.0) for name, cpu in self._cpu().items()}
        self.cpu_s_by_process = dict(sorted(spent.items(), key=lambda item: -item[1]))
        self.cpu_s = sum(spent.values())
        self.wall_s = time.perf_counter() - self._wall_start
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def cpu_utilisation(self) -> float:
        """Fraction of all cores busy over the measured interval."""
        return self.cpu_s / (self.wall_s * (os.cpu_count() or 1)) if self.wall_s else 0.0
