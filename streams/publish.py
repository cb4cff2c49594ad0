"""Publishing events: every AUDIO publish carries Nats-Msg-Id so retries never fork the chain."""

from __future__ import annotations

from nats.js import JetStreamContext

from schemas.events import AudioEvent, Progress, encode
from streams.names import AUDIO_STREAM, PROGRESS_STREAM, event_subject, msg_id, progress_subject


class EventPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def publish(self, event: AudioEvent, *, stage: str, version: int) -> bool:
        """Publish `event` as the output of `stage` at `version`; False if it was a duplicate."""
        ack = await self.js.publish(
            event_subject(event),
            encode(event),
            stream=AUDIO_STREAM,
            headers={"Nats-Msg-Id": msg_id(event.track.track_id, stage, version)},
        )
        return not ack.duplicate

    async def progress(self, progress: Progress) -> None:
        await self.js.publish(
            progress_subject(progress.tenant, progress.track_id),
            encode(progress),
            stream=PROGRESS_STREAM,
        )
