"""Stream and consumer configuration, created when missing and checked for drift at start-up.

The AUDIO stream is the record (limits retention, never work-queue, no age limit) so any stage can
be replayed. Settings that decide delivery semantics are compared with what the server has;
a difference is an error that names the field, because silently "fixing" it could lose the log.
"""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from schemas.settings import Settings
from streams.names import (
    ADVISORY_STREAM,
    AUDIO_STREAM,
    AUDIO_SUBJECTS,
    DELETED_FILTER,
    FINGERPRINT_DELETES_CONSUMER,
    MAX_DELIVERIES_ADVISORY,
    PROGRESS_STREAM,
    PROGRESS_SUBJECTS,
    STATUS_CONSUMER,
    TAG_CACHE_BUCKET,
    Stage,
    advisory_consumer,
    advisory_filter,
    consumer_name,
    stage_filter,
)

ADVISORY_MAX_AGE_S = 7 * 24 * 3600.0


class TopologyDriftError(RuntimeError):
    """The server's stream or consumer differs from the configuration in code."""


def audio_stream_config(settings: Settings) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=AUDIO_STREAM,
        subjects=[AUDIO_SUBJECTS],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        max_age=0,
        duplicate_window=settings.duplicate_window_s,
        num_replicas=settings.stream_replicas,
    )


def progress_stream_config(settings: Settings) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=PROGRESS_STREAM,
        subjects=[PROGRESS_SUBJECTS],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        max_age=settings.progress_max_age_s,
        duplicate_window=min(120.0, settings.progress_max_age_s),
        num_replicas=settings.stream_replicas,
    )


def advisory_stream_config(settings: Settings) -> js_api.StreamConfig:
    """Max-delivery advisories of the stage consumers, kept until a worker of the stage acks."""
    return js_api.StreamConfig(
        name=ADVISORY_STREAM,
        subjects=[MAX_DELIVERIES_ADVISORY],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        max_age=ADVISORY_MAX_AGE_S,
        duplicate_window=120.0,
        num_replicas=settings.stream_replicas,
    )


def advisory_consumer_config(stage: Stage, settings: Settings) -> js_api.ConsumerConfig:
    return js_api.ConsumerConfig(
        durable_name=advisory_consumer(stage),
        filter_subject=advisory_filter(stage),
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_deliver=-1,  # turning an advisory into `failed` only waits on the stream
    )


def max_ack_pending(settings: Settings) -> int:
    """Unacked messages per stage: one per worker process, so none waits un-heartbeated."""
    return settings.max_ack_pending or settings.worker_count


def stage_consumer_config(stage: Stage, settings: Settings) -> js_api.ConsumerConfig:
    backoff = list(settings.backoff_s) or None
    return js_api.ConsumerConfig(
        durable_name=consumer_name(stage),
        filter_subject=stage_filter(stage),
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=settings.effective_ack_wait_s,
        max_deliver=settings.max_deliver,
        backoff=backoff,
        max_ack_pending=max_ack_pending(settings),
    )


def status_consumer_config(settings: Settings) -> js_api.ConsumerConfig:
    """No delivery limit: a catalog outage delays the status projection, it never drops events."""
    return js_api.ConsumerConfig(
        durable_name=STATUS_CONSUMER,
        filter_subject=PROGRESS_SUBJECTS,
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=1000,
    )


def fingerprint_deletes_config(settings: Settings) -> js_api.ConsumerConfig:
    """No delivery limit: an index outage delays removing a deleted track's fingerprints."""
    return js_api.ConsumerConfig(
        durable_name=FINGERPRINT_DELETES_CONSUMER,
        filter_subject=DELETED_FILTER,
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=100,
    )


STREAM_CHECKED = ("subjects", "retention", "storage", "num_replicas", "duplicate_window", "max_age")
CONSUMER_CHECKED = ("filter_subject", "ack_policy", "deliver_policy")
CONSUMER_UPDATABLE = ("ack_wait", "max_deliver", "backoff", "max_ack_pending")


def _drift(kind: str, name: str, want: Any, have: Any, fields: tuple[str, ...]) -> list[str]:
    return [
        f"{kind} {name}: {field} is {getattr(have, field)!r} on the server, "
        f"{getattr(want, field)!r} in the configuration"
        for field in fields
        if getattr(want, field) != getattr(have, field)
    ]


async def _ensure_stream(js: JetStreamContext, want: js_api.StreamConfig) -> list[str]:
    assert want.name
    try:
        info = await js.stream_info(want.name)
    except NotFoundError:
        await js.add_stream(want)
        return []
    return _drift("stream", want.name, want, info.config, STREAM_CHECKED)


async def _ensure_consumer(
    js: JetStreamContext, stream: str, want: js_api.ConsumerConfig
) -> list[str]:
    assert want.durable_name
    try:
        info = await js.consumer_info(stream, want.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, want)
        return []
    problems = _drift("consumer", want.durable_name, want, info.config, CONSUMER_CHECKED)
    if not problems and any(
        getattr(want, f) != getattr(info.config, f) for f in CONSUMER_UPDATABLE
    ):
        await js.add_consumer(stream, want)  # these fields are editable in place
    return problems


async def ensure_topology(js: JetStreamContext, settings: Settings) -> None:
    """Create what is missing; raise TopologyDriftError listing every difference found."""
    problems = await _ensure_stream(js, audio_stream_config(settings))
    problems += await _ensure_stream(js, progress_stream_config(settings))
    problems += await _ensure_stream(js, advisory_stream_config(settings))
    if problems:
        raise TopologyDriftError("JetStream topology drift:\n  " + "\n  ".join(problems))
    for stage in Stage:
        problems += await _ensure_consumer(js, AUDIO_STREAM, stage_consumer_config(stage, settings))
        problems += await _ensure_consumer(
            js, ADVISORY_STREAM, advisory_consumer_config(stage, settings)
        )
    problems += await _ensure_consumer(js, PROGRESS_STREAM, status_consumer_config(settings))
    problems += await _ensure_consumer(js, AUDIO_STREAM, fingerprint_deletes_config(settings))
    if problems:
        raise TopologyDriftError("JetStream topology drift:\n  " + "\n  ".join(problems))
    try:
        await js.key_value(TAG_CACHE_BUCKET)
    except NotFoundError:
        await js.create_key_value(
            js_api.KeyValueConfig(
                bucket=TAG_CACHE_BUCKET, history=1, replicas=settings.stream_replicas
            )
        )
