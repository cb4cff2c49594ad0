"""Percent progress from a real pool process back to the waiting coroutine."""

from __future__ import annotations

import asyncio
import time

from handlers import progress
from handlers.pool import WorkerPool
from handlers.runtime import PercentReporter


def slow_job(steps: int) -> str:
    for step in range(1, steps + 1):
        time.sleep(0.3)
        progress.report(step / steps)
    return "done"


async def test_reports_reach_the_listener_in_order() -> None:
    pool = WorkerPool(1, 0)
    heard: list[float] = []
    try:
        with progress.listening(heard.append):
            assert await pool.run(slow_job, 8, timeout_s=60) == "done"
        assert await pool.run(slow_job, 2, timeout_s=60) == "done"  # nobody listening now
    finally:
        await pool.close()
    # Reports are throttled to one per half second, and the last may still be on its way.
    assert len(heard) >= 2
    assert heard == sorted(heard)
    assert 0 < heard[0] < 0.5
    assert heard[-1] >= 0.5


def test_work_outside_a_pool_reports_to_nobody() -> None:
    progress.report(0.5)  # no queue, no job: a no-op, not an error


async def test_the_percent_reporter_stops_even_when_a_publish_swallows_its_cancellation() -> None:
    """Python 3.11's `wait_for` (in every NATS request) can swallow a cancellation that lands
    as its reply arrives; stopping must not then wait forever (it held a message for good)."""
    publishing = asyncio.Event()
    sent: list[float] = []

    async def publish_swallowing_cancel(percent: float) -> None:
        sent.append(percent)
        publishing.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # the reply arrives; the cancellation is lost

    reporter = PercentReporter(publish_swallowing_cancel)
    reporter.hear(0.5)
    await publishing.wait()
    stopping = asyncio.create_task(reporter.stop())
    done, _ = await asyncio.wait({stopping}, timeout=3)
    if not done:
        stopping.cancel()  # cancelling the waiter cancels the loop it waits on: clean up
    assert done, "stop() waited on a loop that lost its cancellation"
    reporter.hear(0.9)  # a late report after the stop publishes nothing
    await asyncio.sleep(progress.REPORT_INTERVAL_S * 2)
    assert sent == [50.0]
