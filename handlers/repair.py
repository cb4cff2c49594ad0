"""Repair: no crash leaves a track in limbo.

Now and then (`repair_interval_s`) the worker that owns the catalog looks for uploaded tracks
whose status is neither `indexed` nor `failed` and has not changed for `repair_grace_s`. For each
it reads the track's latest event in the AUDIO log (the record) and:
- `indexed` or `failed` in the log → the status the projection lost is set from the log;
- no event at all (the upload's publish never happened) → `uploaded` is published from the
  catalog entry, so the track goes through the pipeline;
- a stage's input that the stage's consumer still holds (after its ack floor) → nothing: the
  work is pending;
- a stage's input the consumer acknowledged but whose output is missing → the input is
  published again (message id `{track}:repair:{seq}`), so the stage runs it once more.
Every step is idempotent (message ids, sinks keyed by track), so two workers repairing at once
or a repair racing a slow stage produce no duplicate.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js import api as js_api

from handlers.runtime import readable_track
from schemas.events import Deleted, Failed, Fingerprinted, Indexed, Uploaded, decode, encode
from schemas.payloads import TrackRef
from schemas.settings import Settings
from stores.catalog import Catalog
from streams.names import (
    AUDIO_STREAM,
    AUDIO_SUBJECTS,
    FOLLOW_UP_STAGES,
    STAGE_INPUT,
    Stage,
    audio_subject,
    consumer_name,
    msg_id,
    subject_kind,
)

log = structlog.get_logger("repair")
NO_STORED_FILE = ("upload", "the upload was recorded without its file; upload it again")

SWEEP_LIMIT = 500  # tracks examined per sweep (the oldest first)
_STAGE_OF_INPUT = {kind: stage for stage, kind in STAGE_INPUT.items()}
_READ_TIMEOUT_S = 5.0
CLOCK_MARGIN_S = 60.0  # the log is read from a little before the oldest upload (pod clocks differ)


class Latest(msgspec.Struct, frozen=True):
    """A track's latest event in the AUDIO log: its sequence, subject and bytes."""

    seq: int
    subject: str
    data: bytes


async def latest_events(
    js: JetStreamContext, track_ids: set[str], since: float
) -> dict[str, Latest]:
    """The latest AUDIO event of each of `track_ids`, reading the log from `since` (epoch s)."""
    info = await js.stream_info(AUDIO_STREAM)
    last_seq = info.state.last_seq
    found: dict[str, Latest] = {}
    if info.state.messages == 0:
        return found
    sub = await js.subscribe(
        AUDIO_SUBJECTS,
        stream=AUDIO_STREAM,
        ordered_consumer=True,
        config=js_api.ConsumerConfig(
            deliver_policy=js_api.DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.fromtimestamp(since, UTC),
        ),
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=_READ_TIMEOUT_S)
            except TimeoutError:
                return found  # nothing at or after `since`
            seq = msg.metadata.sequence.stream
            track = readable_track(msg.data)
            if track is not None and track.track_id in track_ids:
                found[track.track_id] = Latest(seq=seq, subject=msg.subject, data=msg.data)
            if seq >= last_seq:
                return found
    finally:
        await sub.unsubscribe()


def _uploaded(document: dict[str, Any]) -> Uploaded:
    """The `uploaded` event of a catalog entry whose publish never happened."""
    ref = TrackRef(
        track_id=document["track_id"],
        tenant=document["tenant"],
        blob_key=document["blob_key"],
        filename=document.get("filename", ""),
        sha256=document.get("sha256", ""),
        size_bytes=document.get("size_bytes", 0),
    )
    return Uploaded(track=ref, content_type=document.get("content_type", ""))


class Repairer:
    def __init__(self, js: JetStreamContext, catalog: Catalog, settings: Settings) -> None:
        self.js = js
        self.catalog = catalog
        self.settings = settings

    async def sweep(self) -> dict[str, int]:
        """Examine the quiet unfinished tracks once; counts of what was done, by action."""
        quiet_since = time.time() - self.settings.repair_grace_s
        stuck = await self.catalog.unfinished_tracks(quiet_since, SWEEP_LIMIT)
        actions: dict[str, int] = {}
        if not stuck:
            return actions
        since = min(float(doc["created_at"]) for doc in stuck) - CLOCK_MARGIN_S
        # the ack floors before the log: an input acknowledged by then had its output published
        # before its ack, so the scan below sees that output
        floors = await self._ack_floors()
        latest = await latest_events(self.js, {doc["track_id"] for doc in stuck}, since)
        for document in stuck:
            action = await self._repair(document, latest.get(document["track_id"]), floors)
            actions[action] = actions.get(action, 0) + 1
            if action != "pending":
                log.warning("track_repaired", track_id=document["track_id"], action=action)
        return actions

    async def _ack_floors(self) -> dict[Stage, int]:
        floors: dict[Stage, int] = {}
        for stage in Stage:
            info = await self.js.consumer_info(AUDIO_STREAM, consumer_name(stage))
            floors[stage] = info.ack_floor.stream_seq if info.ack_floor else 0
        return floors

    async def _repair(
        self, document: dict[str, Any], latest: Latest | None, floors: dict[Stage, int]
    ) -> str:
        tenant, track_id = document["tenant"], document["track_id"]
        if latest is None and "blob_key" not in document:
            # the gateway stores the file before it records the upload: nothing to re-drive
            await self.catalog.settle_status(tenant, track_id, failed=NO_STORED_FILE)
            return "no stored file"
        if latest is None:
            await self.js.publish(
                audio_subject("uploaded", tenant),
                encode(_uploaded(document)),
                stream=AUDIO_STREAM,
                headers={"Nats-Msg-Id": msg_id(track_id, "upload", 1)},
            )
            await self.catalog.mark_repaired(tenant, track_id)
            return "uploaded again"
        settled = await self._settle(tenant, track_id, decode(latest.data))
        if settled is not None:
            return settled
        stage = _STAGE_OF_INPUT.get(subject_kind(latest.subject))
        if stage is None:
            return "unknown event"
        if latest.seq > floors[stage]:
            return "pending"
        await self.js.publish(
            latest.subject,
            latest.data,
            stream=AUDIO_STREAM,
            headers={"Nats-Msg-Id": msg_id(track_id, "repair", latest.seq)},
        )
        await self.catalog.mark_repaired(tenant, track_id)
        return "re-driven"

    async def _settle(self, tenant: str, track_id: str, stored: object) -> str | None:
        """The action for a track whose latest event ends it, or None if it does not."""
        # a follow-up stage's output or failure: that stage only runs on indexed tracks
        if isinstance(stored, Indexed | Fingerprinted) or (
            isinstance(stored, Failed) and stored.stage in FOLLOW_UP_STAGES
        ):
            await self.catalog.settle_status(tenant, track_id)
        elif isinstance(stored, Failed):
            await self.catalog.settle_status(tenant, track_id, failed=(stored.stage, stored.reason))
        elif isinstance(stored, Deleted):
            return "deleted"
        else:
            return None
        return "status from the log"

    async def run(self) -> None:
        """Sweep every `repair_interval_s` until cancelled; a failed sweep is logged, not fatal."""
        while True:
            await asyncio.sleep(self.settings.repair_interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                log.warning("repair_sweep_failed", error=f"{type(exc).__name__}: {exc}")
