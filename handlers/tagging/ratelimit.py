"""A token bucket per LLM provider: steady requests per minute, short bursts allowed.

Waiting for a token is bounded by the caller: a wait longer than its budget is refused at once
(no token taken), so a throttled provider fails fast and the chain moves on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """`rate_per_s` tokens per second, holding at most `capacity` (the burst size)."""

    def __init__(
        self,
        rate_per_s: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least one token")
        self._rate = rate_per_s
        self._capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    def reserve(self, max_wait_s: float) -> float | None:
        """Take a token now and return how long to wait before using it, or None if too long.

        Tokens may go negative: each reservation queues behind the earlier ones, so concurrent
        callers on one event loop get successive, correct waits without a lock.
        """
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        wait = max(0.0, (1.0 - self._tokens) / self._rate)
        if wait > max_wait_s:
            return None
        self._tokens -= 1.0
        return wait

    async def acquire(self, max_wait_s: float) -> bool:
        """Wait for a token if that takes at most `max_wait_s`; False (immediately) otherwise."""
        wait = self.reserve(max_wait_s)
        if wait is None:
            return False
        if wait > 0:
            await asyncio.sleep(wait)
        return True
