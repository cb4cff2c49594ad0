"""Percent progress from work in the process pool back to the stage that waits for it.

Decoding a one-hour file takes many seconds, and a person watching the upload wants the bar to
move. A pool job calls `report(fraction)` as it goes; the worker process sends (job id, fraction)
over a queue the pool made; the pool's reader thread hands it to the callback that the waiting
stage registered (`listening`), on the stage's own event loop. Reports are throttled in the
worker, and work outside a pool job (tests, `tonestream analyze`) reports to nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from typing import Any, TypeVar

T = TypeVar("T")
Listener = Callable[[float], None]

REPORT_INTERVAL_S = 0.5

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "progress_listener", default=None
)
# In a pool worker process: where reports go, and which job is running.
_queue: Queue[tuple[str, float] | None] | None = None
_job: str | None = None
_last_report = 0.0


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Pool jobs started inside this block report their progress to `listener` (on this loop)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def current_listener() -> Listener | None:
    return _listener.get()


def attach_worker(queue: Queue[tuple[str, float] | None]) -> None:
    """Pool-process initializer step: reports from this process go to `queue`."""
    global _queue  # noqa: PLW0603 - per-process state, set once by the pool initializer
    _queue = queue


def run_job(job_id: str, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in a pool process with its reports tagged `job_id`."""
    global _job, _last_report  # noqa: PLW0603 - the one job this process is running
    _job, _last_report = job_id, 0.0
    try:
        return fn(*args)
    finally:
        _job = None


def report(fraction: float) -> None:
    """How far the current pool job is (0–1); cheap enough to call per block."""
    global _last_report  # noqa: PLW0603
    now = time.monotonic()
    if _queue is None or _job is None or now - _last_report < REPORT_INTERVAL_S:
        return
    _last_report = now
    with contextlib.suppress(Exception):  # progress is best effort; the work goes on regardless
        _queue.put_nowait((_job, min(max(fraction, 0.0), 1.0)))


def deliver(loop: asyncio.AbstractEventLoop, listener: Listener, fraction: float) -> None:
    """Hand a report to its listener on the listener's loop (from the pool's reader thread)."""
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
        loop.call_soon_threadsafe(listener, fraction)
