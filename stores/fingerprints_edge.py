"""The fingerprint index in the one process that owns it, and the async client the rest awaits.

A Qdrant Edge shard has a single owner, and its calls hold the GIL (an `optimize` for seconds),
so the shard (stores.fingerprints.FingerprintIndex under `data_dir/fingerprints`) lives in a
one-process pool of its own, as the vector shards do (stores.vectors_edge): the requests run
one at a time there, and the worker's event loop only awaits the answers. The workers running
the fingerprint stage open it; the gateway reaches it through them (`tonestream.query.identify`
request/reply), so `tonestream up` and a split deployment have the same one owner.

The functions at module level run in the owning process; `EdgeFingerprints` is the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from handlers.fingerprint import core
from stores.fingerprints import FingerprintIndex, Identified

FINGERPRINT_DIR = "fingerprints"
OPTIMIZE_AFTER_S = 2.0

T = TypeVar("T")
log = structlog.get_logger("tonestream.fingerprints")

_index: FingerprintIndex | None = None


# -- in the owning process ---------------------------------------------------------------------
def _init(path: str) -> None:
    global _index  # noqa: PLW0603 - this process's one shard, opened once when it starts
    _index = FingerprintIndex(Path(path))


def _owned() -> FingerprintIndex:
    assert _index is not None, "the fingerprint index process was not initialised"
    return _index


def _add(tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> int:
    return _owned().add(tenant, track_id, hashes, times)


def _remove(tenant: str, track_id: str) -> None:
    _owned().remove(tenant, track_id)


def _identify(tenant: str, hashes: core.Hashes, times: core.Times, limit: int) -> list[Identified]:
    return _owned().identify(tenant, hashes, times, limit=limit)


def _duplicates(tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> list[str]:
    return _owned().duplicates(tenant, track_id, hashes, times)


def _count(tenant: str, track_id: str | None) -> int:
    return _owned().count(tenant, track_id)


def _optimize() -> None:
    _owned().optimize()


def _close() -> None:
    index = _owned()
    index.flush()
    index.close()


# -- the client --------------------------------------------------------------------------------
class EdgeFingerprints:
    """Async access to the fingerprint shard under `data/fingerprints`, in its owning process."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self._pool = pool
        self._optimize_timer: asyncio.TimerHandle | None = None
        self._optimizing: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, data: Path) -> EdgeFingerprints:
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(data / FINGERPRINT_DIR),),
        )
        return cls(pool)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _written(self) -> None:
        """Index the new windows once writes pause (searched unindexed, ~2x slower, until then)."""
        if self._optimize_timer is not None:
            self._optimize_timer.cancel()
        self._optimize_timer = asyncio.get_running_loop().call_later(
            OPTIMIZE_AFTER_S, self._start_optimize
        )

    def _start_optimize(self) -> None:
        self._optimize_timer = None
        if self._optimizing is None or self._optimizing.done():
            self._optimizing = asyncio.create_task(self._call(_optimize))

    async def add(self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> int:
        """Replace the track's fingerprints; the number of windows written."""
        windows = await self._call(_add, tenant, track_id, hashes, times)
        self._written()
        return windows

    async def remove(self, tenant: str, track_id: str) -> None:
        await self._call(_remove, tenant, track_id)
        self._written()

    async def identify(
        self, tenant: str, hashes: core.Hashes, times: core.Times, limit: int = 5
    ) -> list[Identified]:
        return await self._call(_identify, tenant, hashes, times, limit)

    async def duplicates(
        self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times
    ) -> list[str]:
        return await self._call(_duplicates, tenant, track_id, hashes, times)

    async def count(self, tenant: str, track_id: str | None = None) -> int:
        return await self._call(_count, tenant, track_id)

    async def close(self) -> None:
        if self._optimize_timer is not None:
            self._optimize_timer.cancel()
        if self._optimizing is not None:
            with contextlib.suppress(Exception):
                await self._optimizing
        try:
            await self._call(_close)
        finally:
            await asyncio.to_thread(self._pool.shutdown)
