"""Moving an older data dir's vectors from qdrant-client local mode into Qdrant Edge.

Before Edge, the embedded index was qdrant-client's local mode under `data/qdrant`. On start the
Edge backend runs this in its owning process (stores.vectors_edge): every local-mode collection
is copied, vectors and payloads, point ids unchanged, into the Edge shard of the same name.
Nothing is lost or left half-done: the copy is checked (each shard holds exactly the source's
points) before the old folder is renamed, never deleted, to `qdrant-local-migrated-<time>`; a
copy that fails or stops midway leaves the old folder in place, and the next start copies again
(upserts by the same ids, so a repeated copy is harmless).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import cast

from qdrant_client import QdrantClient

from stores import vectors_edge_host as host
from stores.vectors import Point

LOCAL_MODE_DIR = "qdrant"
BATCH = 256


class MigrationError(RuntimeError):
    """The copy does not match its source; the source folder was left in place."""


def _copy_collection(client: QdrantClient, name: str) -> int:
    host.create(name)
    offset = None
    while True:
        records, offset = client.scroll(
            name, limit=BATCH, offset=offset, with_payload=True, with_vectors=True
        )
        points: list[Point] = [
            (str(record.id), cast("dict[str, list[float]]", record.vector), record.payload or {})
            for record in records
        ]
        if points:
            host.upsert(name, points)
        if offset is None:
            break
    expected = client.count(name, exact=True).count
    copied = host.count(name)
    if copied != expected:
        raise MigrationError(
            f"collection {name!r}: {expected} points in local mode but {copied} in Qdrant Edge; "
            "the local-mode folder is kept, nothing was removed"
        )
    return copied


def migrate_local_mode(data: str) -> int:
    """Copy every collection of `data/qdrant` into Edge, then rename the folder; the number of
    points copied. Runs in the Edge owning process (host.init has run)."""
    source = Path(data) / LOCAL_MODE_DIR
    with warnings.catch_warnings():  # local mode advises a server past 20k points: we are leaving
        warnings.simplefilter("ignore", UserWarning)
        client = QdrantClient(path=str(source))
        try:
            names = [c.name for c in client.get_collections().collections]
            total = sum(_copy_collection(client, name) for name in names)
        finally:
            client.close()
    for name in names:
        host.flush(name)
    source.rename(source.with_name(f"qdrant-local-migrated-{time.strftime('%Y%m%dT%H%M%S')}"))
    return total
