"""Prometheus metrics of one gateway: request latency, uploads, stage durations, consumer lag.

Request latency is labelled by route template (`/v1/tracks/{track_id}`), never by raw path, so
ids cannot explode the series. Stage durations come from the `finished` progress events the
stages publish (their `elapsed_s`); consumer lag per stage is read from JetStream at scrape time.
Each app has its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schemas.events import Progress, decode
from streams.names import AUDIO_STREAM, PROGRESS_SUBJECTS, Stage, consumer_name

if TYPE_CHECKING:
    from gateway.services import Services

log = structlog.get_logger("gateway.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "tonestream_http_request_duration_seconds",
            "HTTP request latency (streams: time to the response headers)",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "tonestream_uploads_total",
            "Uploads by outcome: accepted, duplicate, rejected",
            ["outcome"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "tonestream_upload_bytes_total", "Bytes of accepted uploads", registry=self.registry
        )
        self.stage_seconds = Histogram(
            "tonestream_stage_duration_seconds",
            "Time a stage worked on one track",
            ["stage"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.stage_failures = Counter(
            "tonestream_stage_failures_total",
            "Tracks that failed, by stage",
            ["stage"],
            registry=self.registry,
        )
        self.consumer_pending = Gauge(
            "tonestream_consumer_pending_messages",
            "Messages of a stage's input not yet delivered (lag)",
            ["stage"],
            registry=self.registry,
        )
        self.consumer_in_flight = Gauge(
            "tonestream_consumer_ack_pending_messages",
            "Messages of a stage delivered but not yet acknowledged",
            ["stage"],
            registry=self.registry,
        )

    def _on_progress(self, progress: Progress) -> None:
        if progress.state == "finished":
            self.stage_seconds.labels(progress.stage).observe(progress.elapsed_s)
        elif progress.state == "failed":
            self.stage_failures.labels(progress.stage).inc()

    @contextlib.asynccontextmanager
    async def observe_pipeline(self, services: Services) -> AsyncIterator[None]:
        """Watch live progress events for stage durations while the app runs."""

        async def on_message(msg: Msg) -> None:
            try:
                event = decode(msg.data)
            except ValueError:
                return
            if isinstance(event, Progress):
                self._on_progress(event)

        subscription = await services.nc.subscribe(PROGRESS_SUBJECTS, cb=on_message)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # the connection may already be closing
                await subscription.unsubscribe()

    async def render(self, services: Services) -> bytes:
        for stage in Stage:
            try:
                info = await services.js.consumer_info(AUDIO_STREAM, consumer_name(stage))
            except NotFoundError:
                continue
            self.consumer_pending.labels(stage).set(info.num_pending or 0)
            self.consumer_in_flight.labels(stage).set(info.num_ack_pending or 0)
        return generate_latest(self.registry)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Times every HTTP request into the app's `Metrics` (found on app state)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()

        def observe(status: int) -> None:
            metrics: Metrics = scope["app"].state.metrics
            metrics.request_seconds.labels(
                scope["method"], scope.get("path_template", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observe(message["status"])
            await send(message)

        try:
            await app(scope, receive, timed_send)
        except HTTPException as exc:  # answered by the exception handler outside us
            observe(exc.status_code)
            raise

    return middleware
