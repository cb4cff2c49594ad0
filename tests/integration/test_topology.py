"""Stream/consumer configuration on a real nats-server: created when missing, drift refused with
a message that names the field, and replay rewinds a consumer to the beginning or to a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import api as js_api

from schemas.events import Uploaded
from schemas.payloads import TrackRef
from schemas.settings import settings_from_env
from streams.names import AUDIO_STREAM, Stage, consumer_name
from streams.publish import EventPublisher
from streams.replay import rewind
from streams.server import EmbeddedNats
from streams.topology import TopologyDriftError, ensure_topology


@pytest.fixture
async def nc(tmp_path: Path) -> AsyncIterator[Client]:
    server = await EmbeddedNats.start(tmp_path / "nats")
    client = await nats.connect(server.url)
    try:
        yield client
    finally:
        await client.close()
        await server.stop()


async def test_topology_is_created_then_checked_for_drift(nc: Client) -> None:
    js = nc.jetstream()
    settings = settings_from_env({})
    await ensure_topology(js, settings)
    await ensure_topology(js, settings)  # idempotent

    info = await js.stream_info(AUDIO_STREAM)
    assert info.config.retention == js_api.RetentionPolicy.LIMITS
    assert info.config.duplicate_window == settings.duplicate_window_s
    consumer = await js.consumer_info(AUDIO_STREAM, consumer_name(Stage.FEATURES))
    assert consumer.config.filter_subject == "audio.decoded.*"
    assert consumer.config.ack_policy == js_api.AckPolicy.EXPLICIT

    with pytest.raises(TopologyDriftError, match="duplicate_window"):
        await ensure_topology(js, settings_from_env({}, duplicate_window_s=60.0))

    # editable consumer limits are updated in place, not reported as drift
    await ensure_topology(js, settings_from_env({}, max_deliver=9))
    consumer = await js.consumer_info(AUDIO_STREAM, consumer_name(Stage.FEATURES))
    assert consumer.config.max_deliver == 9


async def _publish_uploads(publisher: EventPublisher, count: int) -> None:
    for _ in range(count):
        track = TrackRef(track_id=uuid.uuid4().hex, tenant="alice", blob_key="k")
        await publisher.publish(Uploaded(track=track), stage="uploaded", version=1)


async def _drain(nc: Client) -> int:
    """Ack everything the decode consumer delivers now; returns how many it delivered."""
    sub = await nc.jetstream().pull_subscribe_bind(consumer_name(Stage.DECODE), AUDIO_STREAM)
    delivered = 0
    try:
        while True:
            try:
                msgs = await sub.fetch(10, timeout=0.5)
            except TimeoutError:
                return delivered
            for msg in msgs:
                await msg.ack_sync()
            delivered += len(msgs)
    finally:
        await sub.unsubscribe()


async def test_rewind_replays_from_the_start_or_from_a_time(nc: Client) -> None:
    await ensure_topology(nc.jetstream(), settings_from_env({}))
    publisher = EventPublisher(nc.jetstream())
    await _publish_uploads(publisher, 3)
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await _publish_uploads(publisher, 2)

    assert await _drain(nc) == 5
    assert await _drain(nc) == 0  # all acknowledged

    assert await rewind(nc, Stage.DECODE) == 1
    assert await _drain(nc) == 5
    assert await rewind(nc, Stage.DECODE, since=since) == 4
    assert await _drain(nc) == 2
    assert await rewind(nc, Stage.DECODE, since=datetime.now(UTC)) == 0  # nothing newer
