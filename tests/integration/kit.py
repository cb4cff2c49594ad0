"""Helpers for pipeline tests: upload generated audio, publish `uploaded`, watch the log."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from nats.aio.client import Client
from nats.js import api as js_api

from schemas.events import AudioEvent, Failed, Indexed, Progress, TrackEvent, Uploaded, decode
from schemas.payloads import TrackRef
from stores.blobs import BlobStore
from streams.names import AUDIO_STREAM, PROGRESS_STREAM
from streams.publish import EventPublisher

TENANT = "alice"


async def upload(
    blobs: BlobStore, publisher: EventPublisher, path: Path, tenant: str = TENANT
) -> Uploaded:
    """What the gateway does for an upload: blob first, then the event."""
    data = await asyncio.to_thread(path.read_bytes)
    track_id = uuid.uuid4().hex
    key = f"{tenant}/{track_id}/original"
    await blobs.put_bytes(key, data)
    event = Uploaded(
        track=TrackRef(
            track_id=track_id,
            tenant=tenant,
            blob_key=key,
            filename=path.name,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
        )
    )
    assert await publisher.publish(event, stage="uploaded", version=1)
    return event


async def read_all(nc: Client, stream: str, subject: str) -> list[object]:
    """Every message on `subject` currently in `stream`, decoded, in order."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    sub = await js.subscribe(
        subject,
        stream=stream,
        ordered_consumer=True,
        config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.ALL),
    )
    events: list[object] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                return events
            events.append(decode(msg.data))
    finally:
        await sub.unsubscribe()


async def audio_events(nc: Client, kind: str = "*") -> list[AudioEvent]:
    return [
        e for e in await read_all(nc, AUDIO_STREAM, f"audio.{kind}.*") if isinstance(e, TrackEvent)
    ]


async def progress_events(nc: Client, track_id: str) -> list[Progress]:
    events = await read_all(nc, PROGRESS_STREAM, f"progress.*.{track_id}")
    return [e for e in events if isinstance(e, Progress)]


async def wait_until(
    check: Callable[[], object], timeout_s: float = 120.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def finished_tracks(nc: Client) -> dict[str, str]:
    """track_id → "indexed" or "failed: <reason>" for every track that reached an end."""
    ends: dict[str, str] = {}
    for event in await audio_events(nc):
        if isinstance(event, Indexed):
            ends[event.track.track_id] = "indexed"
        elif isinstance(event, Failed):
            ends[event.track.track_id] = f"failed: {event.reason}"
    return ends
