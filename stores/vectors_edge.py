"""The embedded vector index: Qdrant Edge shards owned by one child process.

Edge is Qdrant's own engine (WAL, HNSW, payload indexes, the server's data format) as a library,
but its calls hold the GIL, so they run in a one-process pool (stores.vectors_edge_host) and the
event loop only awaits answers: a search, a write burst or an index build never stalls the
gateway, the stage runners or an SSE stream. Requests run one at a time in that process, which is
the single owner Edge requires of each shard directory.

Edge builds indexes only when asked: once writes pause for `OPTIMIZE_AFTER_S`, an `optimize`
request indexes the new segments (searches queue behind it meanwhile; the loop stays free).
On start, a qdrant-client local-mode folder left by an older version is migrated into Edge
(stores.vectors_migrate) before anything else runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from stores import vectors_edge_host as host
from stores.vectors import Nearest, Point, StoredPoint
from stores.vectors_migrate import LOCAL_MODE_DIR, migrate_local_mode

EDGE_DIR = "qdrant-edge"
OPTIMIZE_AFTER_S = 2.0

T = TypeVar("T")
log = structlog.get_logger("tonestream.vectors")


class EdgeBackend:
    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self._optimize_timer: asyncio.TimerHandle | None = None
        self._optimizing: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, data: Path) -> EdgeBackend:
        """The owning process for the shards under `data/qdrant-edge`, after migrating
        `data/qdrant` (local mode) if it is there."""
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=host.init,
            initargs=(str(data / EDGE_DIR),),
        )
        backend = cls(pool)
        try:
            if (data / LOCAL_MODE_DIR).is_dir():
                moved = await backend._call(migrate_local_mode, str(data))
                log.info("vectors.migrated", points=moved, source=str(data / LOCAL_MODE_DIR))
        except BaseException:
            await asyncio.to_thread(pool.shutdown)
            raise
        return backend

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the owning process; the loop awaits the answer."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _written(self) -> None:
        """(Re)arm the optimize that follows a pause in writes."""
        if self._optimize_timer is not None:
            self._optimize_timer.cancel()
        loop = asyncio.get_running_loop()
        self._optimize_timer = loop.call_later(OPTIMIZE_AFTER_S, self._start_optimize)

    def _start_optimize(self) -> None:
        self._optimize_timer = None
        if self._optimizing is None or self._optimizing.done():
            self._optimizing = asyncio.create_task(self.optimize())

    async def optimize(self) -> None:
        if await self._call(host.optimize):
            log.info("vectors.optimized")

    async def close(self) -> None:
        if self._optimize_timer is not None:
            self._optimize_timer.cancel()
        if self._optimizing is not None:
            with contextlib.suppress(Exception):
                await self._optimizing
        try:
            await self._call(host.close)
        finally:
            await asyncio.to_thread(self.pool.shutdown)

    async def collections(self, prefix: str) -> list[str]:
        return await self._call(host.collections, prefix)

    async def exists(self, name: str) -> bool:
        return await self._call(host.exists, name)

    async def create(self, name: str) -> None:
        await self._call(host.create, name)

    async def upsert(self, name: str, points: list[Point]) -> None:
        await self._call(host.upsert, name, points)
        self._written()

    async def retrieve(self, name: str, pid: str) -> StoredPoint | None:
        return await self._call(host.retrieve, name, pid)

    async def delete(self, name: str, pid: str) -> None:
        await self._call(host.delete, name, pid)
        self._written()

    async def drop(self, name: str) -> None:
        await self._call(host.drop, name)

    async def count(self, name: str) -> int:
        return await self._call(host.count, name)

    async def query_many(
        self, name: str, queries: list[Nearest]
    ) -> list[list[tuple[float, dict[str, Any]]]]:
        return await self._call(host.query_many, name, queries)

    async def pid(self) -> int:
        """The owning process's id (for memory probes)."""
        return await self._call(os.getpid)
