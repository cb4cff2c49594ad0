"""Delivery semantics shared by every stage, so each stage module is only "event in, event out".

For every message: bind log context, publish `started`, keep the message alive with in_progress
while the stage works, publish the next event with its Nats-Msg-Id, publish `finished`, then ack
(and wait for the ack). A PermanentError publishes `failed` with the reason and terminates the
message. Anything else is retried with a delayed nak; the last allowed attempt becomes `failed`.
A stage has an overall deadline (`stage_deadline_s`): past it the keep-alive stops and the
attempt counts as a transient failure, so a hung call never holds its message forever. A message
that cannot be decoded still names its track when its `track` field is readable: that track
gets `failed` with the reason, so nothing stays stuck on an unreadable event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec
import structlog
from nats.aio.msg import Msg

from handlers import progress
from handlers.errors import PermanentError
from schemas.events import AudioEvent, Failed, Progress, ProgressState, TrackEvent, decode
from schemas.payloads import TrackRef
from schemas.settings import Settings
from streams.names import Stage
from streams.publish import EventPublisher

log = structlog.get_logger("stage")


class StageDeadlineError(Exception):
    """The stage ran past `stage_deadline_s`: a transient failure (retried, bounded)."""


InputT = TypeVar("InputT", bound=TrackEvent)


class StageCore(Protocol[InputT]):
    """What a stage module provides: its identity, its input type and one async step."""

    @property
    def stage(self) -> Stage: ...

    @property
    def input_type(self) -> type[InputT]: ...

    @property
    def version(self) -> int: ...

    async def handle(self, event: InputT) -> AudioEvent: ...


class _TrackOnly(msgspec.Struct, frozen=True):
    """The one field an unreadable event may still carry intact."""

    track: TrackRef


def readable_track(data: bytes) -> TrackRef | None:
    """The `track` of a message that is not a valid event, if that much can be read."""
    try:
        return msgspec.json.decode(data, type=_TrackOnly).track
    except msgspec.DecodeError:
        return None


class PercentReporter:
    """Publishes the pool's progress reports for one message as `percent` events, at most one per
    report interval; stopped (and silent) before the stage's final event goes out.

    Stopping sets a flag as well as cancelling: on Python 3.11 `asyncio.wait_for` (inside every
    NATS request) can swallow a cancellation that lands as its reply arrives, and a loop that
    only listened for the cancellation would then run forever and hold its message with it.
    """

    def __init__(self, publish: Callable[[float], Awaitable[None]]) -> None:
        self._publish_percent = publish
        self._heard: float | None = None
        self._sent = 0.0
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def hear(self, fraction: float) -> None:
        self._heard = fraction
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._publish())

    async def _publish(self) -> None:
        while not self._stopped:
            percent = round(100.0 * (self._heard or 0.0), 1)
            if percent >= self._sent + 1.0:
                self._sent = percent
                try:
                    await self._publish_percent(percent)
                except Exception as exc:  # noqa: BLE001 - a lost percent event costs nothing
                    log.warning("percent_not_published", error=str(exc))
            await asyncio.sleep(progress.REPORT_INTERVAL_S)

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class StageRunner:
    def __init__(self, core: StageCore[Any], publisher: EventPublisher, settings: Settings) -> None:
        self.core = core
        self.publisher = publisher
        self.settings = settings

    async def _progress(
        self,
        track: TrackRef,
        state: ProgressState,
        message: str = "",
        elapsed_s: float = 0.0,
        percent: float | None = None,
    ) -> None:
        await self.publisher.progress(
            Progress(
                track_id=track.track_id,
                tenant=track.tenant,
                stage=self.core.stage,
                state=state,
                percent=percent if percent is not None else 100.0 if state == "finished" else 0.0,
                message=message,
                elapsed_s=elapsed_s,
            )
        )

    async def fail(self, track: TrackRef, reason: str) -> None:
        failed = Failed(track=track, stage=self.core.stage, reason=reason)
        await self.publisher.publish(
            failed, stage=f"{self.core.stage}-failed", version=self.core.version
        )
        await self._progress(track, "failed", reason)

    async def _refuse(self, msg: Msg, reason: str) -> None:
        """An input this stage can never read: `failed` for its track (if named), terminate."""
        track = readable_track(msg.data)
        log.error("unreadable_message", stage=self.core.stage, subject=msg.subject, reason=reason)
        if track is not None:
            await self.fail(track, reason)
        await msg.term()

    async def _keep_alive(self, msg: Msg) -> None:
        interval = max(0.2, self.settings.effective_ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
            except Exception as exc:  # noqa: BLE001 - at worst the message is redelivered
                log.warning("in_progress_failed", stage=self.core.stage, error=str(exc))

    async def _within_deadline(self, event: TrackEvent) -> AudioEvent:
        deadline = self.settings.stage_deadline_s
        try:
            return await asyncio.wait_for(self.core.handle(event), deadline)
        except TimeoutError:
            raise StageDeadlineError(
                f"the {self.core.stage} stage did not finish within {deadline:g} s"
            ) from None

    async def __call__(self, msg: Msg) -> None:
        delivered = msg.metadata.num_delivered
        try:
            event = decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._refuse(msg, f"the {self.core.stage} stage cannot read its input: {exc}")
            return
        if not isinstance(event, self.core.input_type):
            got = type(event).__name__
            await self._refuse(msg, f"the {self.core.stage} stage got a {got} event")
            return
        bound = log.bind(
            track_id=event.track.track_id,
            tenant=event.track.tenant,
            stage=self.core.stage,
            delivery=delivered,
        )
        started = time.perf_counter()
        await self._progress(event.track, "started")
        keep_alive = asyncio.create_task(self._keep_alive(msg))

        async def publish_percent(value: float, track: TrackRef = event.track) -> None:
            await self._progress(track, "percent", percent=value)

        percent = PercentReporter(publish_percent)
        try:
            with progress.listening(percent.hear):
                result = await self._within_deadline(event)
        except PermanentError as exc:
            await self.fail(event.track, exc.reason)
            await msg.term()
            bound.warning(
                "failed", reason=exc.reason, seconds=round(time.perf_counter() - started, 3)
            )
            return
        except Exception as exc:  # noqa: BLE001 - every other error is a retry candidate
            reason = f"{type(exc).__name__}: {exc}"
            if delivered >= self.settings.max_deliver:
                await self.fail(event.track, f"gave up after {delivered} attempts: {reason}")
                await msg.term()
                bound.error("gave_up", reason=reason)
            else:
                delay = self.settings.redelivery_delay_s(delivered)
                await msg.nak(delay=delay)
                bound.warning("retrying", reason=reason, retry_in_s=delay)
            return
        finally:
            keep_alive.cancel()  # first: whatever happens below, the message can be redelivered
            with contextlib.suppress(asyncio.CancelledError):
                await keep_alive
            await percent.stop()
        elapsed_s = time.perf_counter() - started
        # finished goes out before the output: the next stage's started comes after it
        await self._progress(event.track, "finished", elapsed_s=elapsed_s)
        fresh = await self.publisher.publish(
            result, stage=self.core.stage, version=self.core.version
        )
        await msg.ack_sync()
        bound.info(
            "handled",
            produced=type(result).__name__,
            duplicate=not fresh,
            seconds=round(elapsed_s, 3),
        )
