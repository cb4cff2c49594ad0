"""The vector index on a Qdrant server or cluster, through qdrant-client's async API.

The distributed shape: several gateway and indexing processes share one Qdrant. Network calls
are awaited, so nothing here blocks the event loop. Request building (`to_filter`,
`collection_config`) is pure and tested without a server.
"""

from __future__ import annotations

from typing import Any, cast

from qdrant_client import AsyncQdrantClient, models

from stores.vectors import (
    HIT_FIELDS,
    PAYLOAD_INDEXES,
    VECTOR_DIMS,
    Condition,
    Match,
    Nearest,
    Point,
    StoredPoint,
    like_vector,
)

_SCHEMAS = {"keyword": models.PayloadSchemaType.KEYWORD, "float": models.PayloadSchemaType.FLOAT}


def to_filter(conditions: list[Condition]) -> models.Filter | None:
    """The qdrant-client filter requiring every condition (None when there are none)."""
    must: list[models.Condition] = []
    for condition in conditions:
        if isinstance(condition, Match):
            match: models.MatchValue | models.MatchAny = (
                models.MatchValue(value=condition.values[0])
                if len(condition.values) == 1
                else models.MatchAny(any=list(condition.values))
            )
            must.append(models.FieldCondition(key=condition.field, match=match))
        else:
            bounds = models.Range(gte=condition.gte, lte=condition.lte)
            must.append(models.FieldCondition(key=condition.field, range=bounds))
    return models.Filter(must=must) if must else None


def collection_config() -> dict[str, models.VectorParams]:
    return {
        name: models.VectorParams(size=dim, distance=models.Distance.COSINE)
        for name, dim in VECTOR_DIMS.items()
    }


class ServerBackend:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, url: str, api_key: str = "") -> ServerBackend:
        return cls(AsyncQdrantClient(url=url, api_key=api_key or None))

    async def close(self) -> None:
        await self.client.close()

    async def collections(self, prefix: str) -> list[str]:
        response = await self.client.get_collections()
        return [c.name for c in response.collections if c.name.startswith(prefix)]

    async def exists(self, name: str) -> bool:
        return await self.client.collection_exists(name)

    async def create(self, name: str) -> None:
        if not await self.client.collection_exists(name):
            try:
                await self.client.create_collection(name, vectors_config=collection_config())
            except Exception:
                if not await self.client.collection_exists(name):
                    raise  # else another process created it meanwhile
        for field, kind in PAYLOAD_INDEXES.items():
            await self.client.create_payload_index(name, field, _SCHEMAS[kind])

    async def upsert(self, name: str, points: list[Point]) -> None:
        structs = [
            models.PointStruct(id=pid, vector=vectors, payload=payload)
            for pid, vectors, payload in points
        ]
        await self.client.upsert(name, structs)

    async def retrieve(self, name: str, pid: str) -> StoredPoint | None:
        records = await self.client.retrieve(name, [pid], with_payload=True, with_vectors=True)
        if not records:
            return None
        # every point is written by upsert: named dense vectors only
        vectors = cast("dict[str, list[float]]", records[0].vector)
        return dict(vectors), records[0].payload or {}

    async def delete(self, name: str, pid: str) -> None:
        await self.client.delete(name, models.PointIdsList(points=[pid]))

    async def drop(self, name: str) -> None:
        await self.client.delete_collection(name)

    async def count(self, name: str) -> int:
        return (await self.client.count(name, exact=True)).count

    async def query_many(
        self, name: str, queries: list[Nearest]
    ) -> list[list[tuple[float, dict[str, Any]]]]:
        requests = [
            models.QueryRequest(
                query=await self._like(name, query) if query.like else query.vector,
                using=query.vector_name,
                filter=to_filter(query.conditions),
                limit=query.limit,
                with_payload=HIT_FIELDS,
            )
            for query in queries
        ]
        responses = await self.client.query_batch_points(name, requests)
        return [
            [(point.score, point.payload or {}) for point in response.points]
            for response in responses
        ]

    async def _like(self, name: str, query: Nearest) -> list[float]:
        """The mean of the `like` points' vectors (stores.vectors.like_vector)."""
        records = await self.client.retrieve(
            name, list(query.like), with_payload=False, with_vectors=[query.vector_name]
        )
        return like_vector(query, records)

    async def optimize(self) -> None:
        """The server's own optimizers index in the background."""
