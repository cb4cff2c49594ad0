"""Indexing stage: embedded → indexed. Idempotent upserts: the Qdrant point id is derived from
(tenant, track_id) and the catalog has a unique (tenant, track_id) index, so a retry or a replay
rewrites the same point and document."""

from __future__ import annotations

from handlers.errors import PermanentError
from handlers.indexing.core import catalog_fields, vector_payload
from schemas.events import Embedded, Indexed
from schemas.settings import Settings
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.names import Stage


class IndexingStage:
    stage = Stage.INDEXING
    input_type = Embedded

    def __init__(self, settings: Settings, catalog: Catalog, vectors: VectorIndex) -> None:
        self.settings = settings
        self.catalog = catalog
        self.vectors = vectors

    @property
    def version(self) -> int:
        return self.settings.embedding_version  # a re-embedded track is re-announced

    async def handle(self, event: Embedded) -> Indexed:
        track = event.track
        if await self.catalog.is_deleted(track.tenant, track.track_id):
            raise PermanentError("the track was deleted; it is not indexed again")
        point_id = await self.vectors.upsert(
            track.tenant,
            track.track_id,
            event.vectors.audio,
            event.vectors.semantic,
            vector_payload(event),
        )
        await self.catalog.upsert_track(track.tenant, track.track_id, catalog_fields(event))
        return Indexed(track=track, point_id=point_id, embedding_version=event.embedding_version)
