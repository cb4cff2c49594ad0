"""A track's (or a user's) progress events from the PROGRESS stream: history first, then live.

An ordered JetStream consumer delivers the stored history of the subject and continues with new
events on the same subscription, so nothing falls between "history" and "live". The subscription
is removed when the consumer of this iterator stops (client gone, final event sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from schemas.api import ProgressMessage
from schemas.events import Progress, decode
from streams.names import LAST_STAGE, PROGRESS_STREAM, progress_subject


def is_final(progress: Progress) -> bool:
    """A failure, or the last stage (fingerprint, which follows indexing) finished."""
    return progress.state == "failed" or (
        progress.stage == LAST_STAGE and progress.state == "finished"
    )


async def has_history(js: JetStreamContext, tenant: str, track_id: str) -> bool:
    try:
        await js.get_last_msg(PROGRESS_STREAM, progress_subject(tenant, track_id))
    except NotFoundError:
        return False
    return True


async def progress_messages(
    js: JetStreamContext,
    subject: str,
    *,
    history: bool,
    keepalive_s: float,
    stop_at_final: bool,
) -> AsyncIterator[ProgressMessage | None]:
    """Progress messages on `subject`; None every `keepalive_s` of silence (a keep-alive tick)."""
    policy = js_api.DeliverPolicy.ALL if history else js_api.DeliverPolicy.NEW
    subscription = await js.subscribe(
        subject,
        stream=PROGRESS_STREAM,
        ordered_consumer=True,
        config=js_api.ConsumerConfig(deliver_policy=policy),
    )
    try:
        while True:
            try:
                msg = await subscription.next_msg(timeout=keepalive_s)
            except TimeoutError:
                yield None
                continue
            event = decode(msg.data)
            if not isinstance(event, Progress):
                continue
            final = stop_at_final and is_final(event)
            yield ProgressMessage(event=event, seq=msg.metadata.sequence.stream, final=final)
            if final:
                return
    finally:
        await subscription.unsubscribe()
