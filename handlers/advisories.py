"""Max-delivery advisories → `failed` events, read from the ADVISORIES stream per stage.

A message that no worker acknowledged in `max_deliver` attempts (the worker died on it each
time) produces a JetStream advisory. The advisories are kept in a stream, and each stage reads
its own through a durable consumer: a worker that does not run the stage never sees them, and an
advisory published while no worker of the stage is connected waits for the next one.
"""

from __future__ import annotations

import json
from typing import Any

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.errors import NotFoundError

from handlers.runtime import StageRunner
from schemas.events import TrackEvent, decode
from streams.names import ADVISORY_STREAM, AUDIO_STREAM, advisory_consumer, advisory_filter
from streams.topology import advisory_consumer_config


async def fail_from_advisory(broker: NatsBroker, runner: StageRunner, data: bytes) -> None:
    """Publish `failed` for the message the advisory names (nothing if it is gone)."""
    advisory: dict[str, Any] = json.loads(data)
    js = broker.connection.jetstream()
    try:
        stored = await js.get_msg(AUDIO_STREAM, int(advisory["stream_seq"]))
    except NotFoundError:
        return
    event = decode(stored.data or b"")
    if isinstance(event, TrackEvent):
        deliveries = advisory.get("deliveries", runner.settings.max_deliver)
        reason = f"gave up after {deliveries} deliveries with no answer from a worker"
        await runner.fail(event.track, reason)


def subscribe_advisories(broker: NatsBroker, runner: StageRunner) -> None:
    stage = runner.core.stage
    subscriber = broker.subscriber(
        advisory_filter(stage),
        stream=JStream(ADVISORY_STREAM, declare=False),
        durable=advisory_consumer(stage),
        config=advisory_consumer_config(stage, runner.settings),
        pull_sub=PullSub(batch_size=1, timeout=1.0),  # rare; a batch fetch can leak a time-out
        ack_policy=AckPolicy.MANUAL,
        title=f"{stage} max-delivery advisories",
    )

    async def on_advisory(msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            await fail_from_advisory(broker, runner, raw.data)
        except Exception:  # noqa: BLE001 - the advisory stays in the stream; try again later
            await raw.nak(delay=runner.settings.redelivery_delay_s(raw.metadata.num_delivered))
            return
        await raw.ack_sync()

    subscriber(on_advisory)
