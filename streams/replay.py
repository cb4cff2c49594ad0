"""Replay: rewind a stage's durable consumer so it re-reads its input from the log.

Uses the server's consumer reset API (`$JS.API.CONSUMER.RESET`, nats-server ≥ 2.14) so running
workers keep their subscriptions: no consumer is deleted, nothing is lost in between.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from nats.aio.client import Client

from streams.names import AUDIO_STREAM, Stage, consumer_name, stage_filter


class ReplayError(RuntimeError):
    pass


async def _request(nc: Client, subject: str, body: dict[str, object]) -> dict[str, object]:
    reply = await nc.request(subject, json.dumps(body).encode(), timeout=10)
    data: dict[str, object] = json.loads(reply.data)
    return data


async def _first_seq_since(nc: Client, stage: Stage, since: datetime | None) -> int:
    """The first sequence of the stage's input at or after `since` (all of it when None)."""
    body: dict[str, object] = {"next_by_subj": stage_filter(stage)}
    if since is None:
        body["seq"] = 1
    else:
        body["start_time"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
    found = await _request(nc, f"$JS.API.STREAM.MSG.GET.{AUDIO_STREAM}", body)
    if "error" in found:
        error = found["error"]
        if isinstance(error, dict) and error.get("code") == 404:
            return 0  # nothing to replay
        raise ReplayError(f"cannot find where to rewind {stage}: {error}")
    message = found["message"]
    assert isinstance(message, dict)
    seq = message["seq"]
    assert isinstance(seq, int)
    return seq


async def rewind(nc: Client, stage: Stage, since: datetime | None = None) -> int:
    """Re-deliver the stage's input from `since` (or the beginning); returns the first sequence."""
    seq = await _first_seq_since(nc, stage, since)
    if seq == 0:
        return 0
    reset = await _request(
        nc, f"$JS.API.CONSUMER.RESET.{AUDIO_STREAM}.{consumer_name(stage)}", {"seq": seq}
    )
    if "error" in reset:
        raise ReplayError(f"cannot rewind {stage}: {reset['error']}")
    return seq
