"""The process pool for CPU work (decoding, DSP, models), sized to the cores, never the event loop.

Each worker process caps its address space (RLIMIT_AS) so one absurd file cannot take the box down,
and a call that exceeds its time limit kills and replaces the pool rather than hanging a consumer
(the time-out is retried like any transient error, see PoolTimeoutError).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue
from typing import Any, TypeVar

import structlog

from handlers import progress
from handlers.errors import PermanentError

T = TypeVar("T")
log = structlog.get_logger("pool")

_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(memory_mb: int, reports: Queue[tuple[str, float] | None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which shuts us down
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    progress.attach_worker(reports)


class PoolTimeoutError(Exception):
    """A call ran past its time limit. Transient: on an overloaded box a healthy track can be
    slow once, so it is retried, and only the last allowed delivery reports it as `failed`."""


class WorkerPool:
    def __init__(self, size: int, memory_mb: int, default_timeout_s: float | None = None) -> None:
        self.size = size
        self.memory_mb = memory_mb
        self.default_timeout_s = default_timeout_s  # for calls that name no limit of their own
        for name in _SINGLE_THREAD_ENV:  # one process per core: no nested BLAS threads
            os.environ.setdefault(name, "1")
        self._context = multiprocessing.get_context("spawn")
        self._reports: Queue[tuple[str, float] | None] = self._context.Queue()
        self._listeners: dict[str, tuple[asyncio.AbstractEventLoop, progress.Listener]] = {}
        self._reader = threading.Thread(
            target=self._read_reports, name="pool-progress", daemon=True
        )
        self._reader.start()
        self._executor = self._new_executor()
        self._slots = asyncio.Semaphore(size)  # a call's time limit starts when it gets a process

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self.memory_mb, self._reports),
        )

    def _read_reports(self) -> None:
        """Pass each job's progress reports to the stage waiting for that job."""
        while (report := self._reports.get()) is not None:
            job, fraction = report
            waiting = self._listeners.get(job)
            if waiting is not None:
                progress.deliver(*waiting, fraction)

    def _replace_executor(self, old: ProcessPoolExecutor) -> None:
        if old is not self._executor:
            return  # a concurrent call already replaced it
        self._executor = self._new_executor()
        for process in list(getattr(old, "_processes", {}).values()):
            process.kill()
        old.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        async with self._slots:
            limit = self.default_timeout_s if timeout_s is None else timeout_s
            return await self._run(fn, *args, timeout_s=limit)

    async def _run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None) -> T:
        loop = asyncio.get_running_loop()
        executor = self._executor
        job = uuid.uuid4().hex
        listener = progress.current_listener()
        if listener is not None:
            self._listeners[job] = (loop, listener)
        future = loop.run_in_executor(executor, progress.run_job, job, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            log.warning("pool_call_timed_out", fn=repr(fn), timeout_s=timeout_s)
            self._replace_executor(executor)
            raise PoolTimeoutError(f"took longer than the {timeout_s:.0f} s limit") from None
        except MemoryError:
            raise PermanentError(f"needs more than the {self.memory_mb} MB memory limit") from None
        except BrokenProcessPool:
            self._replace_executor(executor)
            raise  # transient: the message is retried, max_deliver bounds it
        finally:
            self._listeners.pop(job, None)

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._reports.put(None)
        await asyncio.to_thread(self._reader.join)
