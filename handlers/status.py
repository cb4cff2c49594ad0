"""The catalog status projection: PROGRESS events → each track's `stages` and `status`.

Ordered by the PROGRESS stream sequence (never a publisher's clock, which differs between pods).
A catalog that does not answer delays the status, never drops it: the event is nak'ed with a
delay and the projection's consumer has no delivery limit, so it is applied once the catalog is
back (the PROGRESS stream keeps events for `progress_max_age_s`).
"""

from __future__ import annotations

import msgspec
import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage

from schemas.events import Progress, decode
from schemas.settings import Settings
from stores.catalog import Catalog
from streams.names import PROGRESS_STREAM, PROGRESS_SUBJECTS, STATUS_CONSUMER
from streams.topology import status_consumer_config

log = structlog.get_logger("status")


def readable_progress(data: bytes) -> Progress | None:
    """The progress event in a PROGRESS message; None for anything else (skipped, not retried)."""
    try:
        event = decode(data)
    except msgspec.DecodeError:
        return None
    return event if isinstance(event, Progress) else None


def subscribe_status(broker: NatsBroker, catalog: Catalog, settings: Settings) -> None:
    subscriber = broker.subscriber(
        PROGRESS_SUBJECTS,
        stream=JStream(PROGRESS_STREAM, declare=False),
        durable=STATUS_CONSUMER,
        config=status_consumer_config(settings),
        pull_sub=PullSub(batch_size=50, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        title="catalog status projection",
    )

    async def on_progress(msg: NatsMessage) -> None:
        raw = msg.raw_message
        event = readable_progress(raw.data)
        if event is None:
            log.error("unreadable_progress", subject=raw.subject)
            await raw.ack()
            return
        try:
            await catalog.apply_progress(event, raw.metadata.sequence.stream)
        except Exception as exc:  # noqa: BLE001 - the catalog is away: try again later
            delay = settings.redelivery_delay_s(raw.metadata.num_delivered)
            log.warning("status_delayed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
            await raw.nak(delay=delay)
            return
        await raw.ack()

    subscriber(on_progress)
