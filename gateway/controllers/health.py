"""Liveness, readiness (every dependency answers) and Prometheus metrics; no auth needed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from gateway.deps import MetricsDep, ServicesDep
from gateway.metrics import CONTENT_TYPE

CHECK_TIMEOUT_S = 2.0
READINESS_PROBE_KEY = "health/readiness-probe"


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str


class Readiness(msgspec.Struct, kw_only=True, frozen=True):
    """`checks`: dependency → "ok" or the reason it is not."""

    ready: bool
    checks: dict[str, str]


async def _check(probe: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:.0f} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}"
    return "ok"


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012 - Litestar's declaration style

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """The process is up."""
        return Health(status="ok")

    @get(
        "/ready",
        operation_id="ready",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(Readiness, description="not ready; why")
        },
    )
    async def ready(self, services: ServicesDep) -> Response[Readiness]:
        """NATS (JetStream), catalog, vectors and blobs all answer; 503 with reasons if not."""
        checks = dict(
            zip(
                ("nats", "catalog", "vectors", "blobs"),
                await asyncio.gather(
                    _check(services.js.account_info),
                    _check(services.catalog.ping),
                    _check(services.vectors.count),
                    _check(lambda: services.blobs.exists(READINESS_PROBE_KEY)),
                ),
                strict=True,
            )
        )
        ready = all(value == "ok" for value in checks.values())
        return Response(
            Readiness(ready=ready, checks=checks),
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )

    @get("/metrics", operation_id="metrics", media_type=CONTENT_TYPE)
    async def metrics(self, services: ServicesDep, metrics: MetricsDep) -> bytes:
        """Prometheus text format."""
        return await metrics.render(services)
