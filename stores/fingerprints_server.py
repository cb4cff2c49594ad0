"""The fingerprint index on a Qdrant server or cluster, through qdrant-client's async API.

The production path: the same layout as the embedded Edge shard (stores.fingerprints: one point
per WINDOW_S window, a sparse vector `fp` of its hashes, the landmarks in the payload, tenant and
track as indexed payload fields), in one collection `<qdrant_collection>_fingerprints` that the
server shards by point id and replicates. Many fingerprint workers may share it. What is not the
connection is shared with Edge (window points, probe, the offset vote, the duplicate check);
the vote runs in a thread so the event loop stays free. Request building is pure and tested
without a server.
"""

from __future__ import annotations

import asyncio

from qdrant_client import AsyncQdrantClient, models

from handlers.fingerprint import core
from stores.fingerprints import (
    CANDIDATE_WINDOWS,
    VECTOR,
    Identified,
    Window,
    duplicate_group,
    excerpts,
    identified,
    names_another,
    probe,
    window_points,
)

UPSERT_BATCH = 256


def collection_name(prefix: str) -> str:
    """Not `<prefix>-…`: those are the per-tenant vector collections a rebuild drops."""
    return f"{prefix}_fingerprints"


def sparse_config() -> dict[str, models.SparseVectorParams]:
    return {VECTOR: models.SparseVectorParams()}


def tenant_filter(tenant: str, track_id: str | None = None) -> models.Filter:
    must: list[models.Condition] = [
        models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))
    ]
    if track_id is not None:
        must.append(models.FieldCondition(key="track_id", match=models.MatchValue(value=track_id)))
    return models.Filter(must=must)


def to_points(windows: list[Window]) -> list[models.PointStruct]:
    return [
        models.PointStruct(
            id=w.id,
            vector={VECTOR: models.SparseVector(indices=w.indices, values=[1.0] * len(w.indices))},
            payload=w.payload,
        )
        for w in windows
    ]


def sparse_query(indices: list[int]) -> models.SparseVector:
    """A clip's probe hashes as the query: the dot product counts shared hashes."""
    return models.SparseVector(indices=indices, values=[1.0] * len(indices))


class ServerFingerprints:
    def __init__(self, client: AsyncQdrantClient, prefix: str) -> None:
        self.client = client
        self.name = collection_name(prefix)
        self._ready = False

    @classmethod
    def connect(cls, url: str, api_key: str, prefix: str) -> ServerFingerprints:
        return cls(AsyncQdrantClient(url=url, api_key=api_key or None), prefix)

    async def _ensure(self) -> None:
        if self._ready:
            return
        if not await self.client.collection_exists(self.name):
            await self.client.create_collection(
                self.name, vectors_config={}, sparse_vectors_config=sparse_config()
            )
        for field in ("tenant", "track_id"):
            await self.client.create_payload_index(
                self.name, field, field_schema=models.PayloadSchemaType.KEYWORD
            )
        self._ready = True

    async def add(self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> int:
        await self.remove(tenant, track_id)
        points = to_points(window_points(tenant, track_id, hashes, times))
        for first in range(0, len(points), UPSERT_BATCH):
            await self.client.upsert(self.name, points[first : first + UPSERT_BATCH], wait=True)
        return len(points)

    async def remove(self, tenant: str, track_id: str) -> None:
        await self._ensure()
        selector = models.FilterSelector(filter=tenant_filter(tenant, track_id))
        await self.client.delete(self.name, points_selector=selector, wait=True)

    async def identify(
        self, tenant: str, hashes: core.Hashes, times: core.Times, limit: int = 5
    ) -> list[Identified]:
        indices = probe(hashes)
        if not indices:
            return []
        await self._ensure()
        found = await self.client.query_points(
            self.name,
            query=sparse_query(indices),
            using=VECTOR,
            query_filter=tenant_filter(tenant),
            limit=CANDIDATE_WINDOWS,
            with_payload=True,
        )
        payloads = [point.payload or {} for point in found.points]
        return await asyncio.to_thread(identified, hashes, times, payloads, limit=limit)

    async def duplicates(
        self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times
    ) -> list[str]:
        parts = excerpts(hashes, times)
        found: list[list[Identified]] = []
        for _, h, t in parts:
            found.append(await self.identify(tenant, h, t, limit=10))
            if not names_another(track_id, found[-1]):
                return []
        return duplicate_group(track_id, [start for start, _, _ in parts], found)

    async def count(self, tenant: str, track_id: str | None = None) -> int:
        await self._ensure()
        counted = await self.client.count(
            self.name, count_filter=tenant_filter(tenant, track_id), exact=True
        )
        return counted.count

    async def close(self) -> None:
        await self.client.close()
