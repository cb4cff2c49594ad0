"""Deleted tracks leave the fingerprint index: `audio.deleted` events, read by the workers that
own the index through a durable consumer of their own.

The gateway deletes what it owns (catalog, vectors, blobs) and logs `deleted`; the fingerprint
index has one owner (the fingerprint workers' index process), so the windows are removed here,
and the track leaves the other tracks' `duplicates`. A delete logged while no fingerprint worker
runs waits in the stream; a catalog or index that does not answer delays it (nak), never drops it.
Both steps are idempotent, so a redelivery is harmless.
"""

from __future__ import annotations

import msgspec
import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage

from schemas.events import Deleted, decode
from schemas.settings import Settings
from stores.catalog import Catalog
from stores.fingerprint_store import FingerprintStore
from streams.names import AUDIO_STREAM, DELETED_FILTER, FINGERPRINT_DELETES_CONSUMER
from streams.topology import fingerprint_deletes_config

log = structlog.get_logger("fingerprint")


def subscribe_deletes(
    broker: NatsBroker, store: FingerprintStore, catalog: Catalog, settings: Settings
) -> None:
    subscriber = broker.subscriber(
        DELETED_FILTER,
        stream=JStream(AUDIO_STREAM, declare=False),
        durable=FINGERPRINT_DELETES_CONSUMER,
        config=fingerprint_deletes_config(settings),
        pull_sub=PullSub(batch_size=10, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        title="fingerprints of deleted tracks",
    )

    async def on_deleted(msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            event = decode(raw.data)
        except msgspec.DecodeError:
            event = None
        if not isinstance(event, Deleted):
            log.error("unreadable_delete", subject=raw.subject)
            await raw.term()
            return
        tenant, track_id = event.track.tenant, event.track.track_id
        try:
            await store.remove(tenant, track_id)
            await catalog.forget_duplicate(tenant, track_id)
        except Exception as exc:  # noqa: BLE001 - the index or catalog is away: later
            delay = settings.redelivery_delay_s(raw.metadata.num_delivered)
            log.warning("fingerprints_not_removed", error=str(exc), retry_in_s=delay)
            await raw.nak(delay=delay)
            return
        await raw.ack_sync()
        log.info("fingerprints_removed", tenant=tenant, track_id=track_id)

    subscriber(on_deleted)
