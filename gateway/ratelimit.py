"""Per-caller rate limits: a token bucket per user (JWT) or API key, 429 with Retry-After.

The caller is who authenticated, never what a header claims, so `X-Forwarded-For` cannot
bypass the limit; routes without authentication (login, register, refresh) are limited per
client socket address. Buckets live in the gateway's memory: each replica limits on its own.
The web app's page and files are not limited: they are served from memory, and a page load
alone is 16 requests.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

from schemas.settings import Settings

MAX_BUCKETS = 100_000
UNLIMITED = re.compile(r"^/(web/.*)?$")  # the web app's page and files (gateway.controllers.web)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.rate = settings.rate_limit_per_minute / 60.0
        self.burst = float(max(settings.rate_limit_burst, 1))
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, caller: str) -> float:
        """Take one token for `caller`; 0 when allowed, else seconds until a token is free."""
        now = time.monotonic()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()  # crude, bounded memory; a fresh bucket is full anyway
            bucket = self._buckets[caller] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0


def caller_of(scope: Scope) -> str:
    credential = scope.get("auth")
    kind, subject = getattr(credential, "kind", None), getattr(credential, "subject", None)
    if kind and subject:
        return f"{kind}:{subject}"
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if UNLIMITED.match(scope["path"]):
            await app(scope, receive, send)
            return
        limiter: RateLimiter = scope["app"].state.rate_limiter
        wait_s = limiter.retry_after(caller_of(scope))
        if wait_s > 0:
            raise TooManyRequestsException(
                detail=f"rate limit exceeded; retry in {math.ceil(wait_s)} s",
                headers={"Retry-After": str(math.ceil(wait_s))},
            )
        await app(scope, receive, send)

    return middleware
