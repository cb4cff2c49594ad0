"""Indexing stage: embedded → indexed. Idempotent upserts: the Qdrant point id is derived from
(tenant, track_id) and the catalog has a unique (tenant, track_id) index, so a retry or a replay
rewrites the same point and document.

Deletion races: the gateway writes the tombstone before it deletes anything, and this stage
checks the tombstone again after its writes; a delete that raced the writes is finished here
(point, document and blobs removed: decode's analysis audio may have been written after the
delete removed the track's blobs), so no interleaving leaves an orphan. Each write has a deadline
(`store_timeout_s`): a hung store is a retried failure, never a message held forever."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from handlers.errors import PermanentError
from handlers.indexing.core import catalog_fields, vector_payload
from schemas.events import Embedded, Indexed
from schemas.settings import Settings
from stores.blobs import BlobStore
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.names import Stage, track_blob_prefix

T = TypeVar("T")
DELETED_REASON = "the track was deleted; it is not indexed again"


class IndexingStage:
    stage = Stage.INDEXING
    input_type = Embedded

    def __init__(
        self, settings: Settings, catalog: Catalog, vectors: VectorIndex, blobs: BlobStore
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.vectors = vectors
        self.blobs = blobs

    @property
    def version(self) -> int:
        return self.settings.embedding_version  # a re-embedded track is re-announced

    async def _within(self, call: Awaitable[T]) -> T:
        return await asyncio.wait_for(call, self.settings.store_timeout_s)

    async def _finish_delete(self, tenant: str, track_id: str) -> None:
        """Remove what this track's pipeline wrote after the delete: the point and document
        written here, and the blobs an earlier stage (decode's analysis audio) wrote late."""
        await self._within(self.vectors.delete(tenant, track_id))
        await self._within(self.catalog.delete_track(tenant, track_id))
        await self._within(self.blobs.delete_prefix(track_blob_prefix(tenant, track_id)))

    async def handle(self, event: Embedded) -> Indexed:
        track = event.track
        tenant, track_id = track.tenant, track.track_id
        if await self._within(self.catalog.is_deleted(tenant, track_id)):
            await self._finish_delete(tenant, track_id)
            raise PermanentError(DELETED_REASON)
        point_id = await self._within(
            self.vectors.upsert(
                tenant,
                track_id,
                event.vectors.audio,
                event.vectors.semantic,
                vector_payload(event),
            )
        )
        await self._within(self.catalog.upsert_track(tenant, track_id, catalog_fields(event)))
        if await self._within(self.catalog.is_deleted(tenant, track_id)):  # deleted meanwhile
            await self._finish_delete(tenant, track_id)
            raise PermanentError(DELETED_REASON)
        return Indexed(track=track, point_id=point_id, embedding_version=event.embedding_version)
