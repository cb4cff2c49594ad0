"""Percent progress from a real pool process back to the waiting coroutine."""

from __future__ import annotations

import time

from handlers import progress
from handlers.pool import WorkerPool


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
