"""What the fault tests share: a system on real servers, uploads recorded like the gateway's,
worker processes, and the per-test tally (ingested, faults, lost, duplicated, stuck)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from nats.aio.client import Client

from schemas.events import Indexed, Uploaded
from schemas.payloads import TrackRef
from schemas.settings import Settings
from stores.blobs import BlobStore
from stores.catalog import Catalog
from streams.names import track_blob_key
from streams.publish import EventPublisher
from tests.integration.kit import TENANT, audio_events


async def record_upload(
    blobs: BlobStore, catalog: Catalog, path: Path, *, publish: EventPublisher | None
) -> TrackRef:
    """The gateway's upload: blob, catalog entry, then (unless `publish` is None) `uploaded`."""
    data = await asyncio.to_thread(path.read_bytes)
    track_id = uuid.uuid4().hex
    key = track_blob_key(TENANT, track_id)
    await blobs.put_bytes(key, data)
    sha = hashlib.sha256(data + track_id.encode()).hexdigest()  # one file, many tracks
    ref = TrackRef(
        track_id=track_id,
        tenant=TENANT,
        blob_key=key,
        filename=path.name,
        sha256=sha,
        size_bytes=len(data),
    )
    fields = {
        "blob_key": key,
        "filename": path.name,
        "sha256": sha,
        "size_bytes": len(data),
        "content_type": "audio/flac",
        "status": "uploaded",
        "created_at": time.time(),
    }
    assert await catalog.create_track(TENANT, track_id, fields) is None
    if publish is not None:
        await publish.publish(Uploaded(track=ref), stage="upload", version=1)
    return ref


def worker_env(settings: Settings, nats_url: str, mongo_url: str) -> dict[str, str]:
    """The environment of a `tonestream worker` process with these settings."""
    env = {**os.environ, "TONESTREAM_NATS_URL": nats_url, "TONESTREAM_MONGO_URL": mongo_url}
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        if isinstance(value, tuple):
            env[f"TONESTREAM_{name.upper()}"] = msgspec.json.encode(value).decode()
        elif isinstance(value, bool):
            env[f"TONESTREAM_{name.upper()}"] = str(value).lower()
        elif isinstance(value, int | float | str) and name not in {"nats_url", "mongo_url"}:
            env[f"TONESTREAM_{name.upper()}"] = str(value)
    return env


def start_worker(env: dict[str, str], stages: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """`tonestream worker STAGES…` as a process of its own (its own process group)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", *stages],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Tally:
    """What a fault test reports: tracks ingested, faults injected, and what went wrong."""

    name: str
    ingested: int = 0
    faults: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name}: ingested {self.ingested}, faults {self.faults}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, stuck {len(self.stuck)}"
        )

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck)


async def tally_outcome(
    tally: Tally, nc: Client, catalog: Catalog, track_ids: Sequence[str], points: dict[str, int]
) -> Tally:
    """Each track: one `indexed` event, one vector point (`points`: track → points found) and one
    catalog entry (lost if none, duplicated if more), with status `indexed` (stuck otherwise)."""
    indexed: dict[str, int] = {}
    for event in await audio_events(nc, "indexed"):
        if isinstance(event, Indexed):
            indexed[event.track.track_id] = indexed.get(event.track.track_id, 0) + 1
    for track_id in track_ids:
        doc = await catalog.get_track(TENANT, track_id)
        copies = max(
            indexed.get(track_id, 0),
            points.get(track_id, 0),
            await catalog.count_tracks(TENANT, track_id=track_id),
        )
        if indexed.get(track_id, 0) == 0 or points.get(track_id, 0) == 0:
            tally.lost.append(track_id)
        elif copies > 1:
            tally.duplicated.append(track_id)
        if doc is None or doc.get("status") != "indexed":
            tally.stuck.append(track_id)
    return tally
