"""The vector index: one Qdrant collection per tenant, named `audio` and `semantic` vectors.

Qdrant local mode on disk (`data_dir/qdrant`, owned by one process) is the embedded default; a
Qdrant server is used when `qdrant_url` is set — same code, only the connection differs. Points
are keyed by `point_id(tenant, track_id)` so re-indexing a track overwrites it (idempotent sink).

A collection per tenant (`<qdrant_collection>-<tenant>`) isolates users by construction, and
keeps the common query — nearest neighbours with no filter — fast in local mode, which checks
every filter condition point by point in Python (a tenant filter made a 10k-track similar
search ~10× slower). The query track itself is dropped from an over-fetched result instead of
being filtered out. Searches with payload filters (tempo, key…) still pay that per-point cost in
local mode; a Qdrant server uses its payload indexes.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from qdrant_client import AsyncQdrantClient, models

from schemas.payloads import AUDIO_VECTOR_DIM, SEMANTIC_VECTOR_DIM
from schemas.settings import Settings

AUDIO = "audio"
SEMANTIC = "semantic"
VECTOR_DIMS = {AUDIO: AUDIO_VECTOR_DIM, SEMANTIC: SEMANTIC_VECTOR_DIM}
POINT_NAMESPACE = uuid.UUID("5c1d0f3e-7a41-5b6e-9f57-3d2a8c4b1e90")

PAYLOAD_INDEXES: dict[str, models.PayloadSchemaType] = {
    "tenant": models.PayloadSchemaType.KEYWORD,
    "track_id": models.PayloadSchemaType.KEYWORD,
    "key": models.PayloadSchemaType.KEYWORD,
    "mode": models.PayloadSchemaType.KEYWORD,
    "mood": models.PayloadSchemaType.KEYWORD,
    "genre": models.PayloadSchemaType.KEYWORD,
    "tempo_bpm": models.PayloadSchemaType.FLOAT,
    "duration_s": models.PayloadSchemaType.FLOAT,
}
# filter name → (payload field, range bound)
RANGE_FILTERS: dict[str, tuple[str, str]] = {
    "tempo_min": ("tempo_bpm", "gte"),
    "tempo_max": ("tempo_bpm", "lte"),
    "duration_min": ("duration_s", "gte"),
    "duration_max": ("duration_s", "lte"),
}
MATCH_FILTERS = frozenset({"key", "mode", "mood", "genre"})


def point_id(tenant: str, track_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{tenant}:{track_id}"))


@dataclass(frozen=True, slots=True)
class VectorHit:
    track_id: str
    score: float
    payload: dict[str, Any]


def _match(field: str, value: str | list[str] | tuple[str, ...]) -> models.FieldCondition:
    if isinstance(value, str):
        return models.FieldCondition(key=field, match=models.MatchValue(value=value))
    return models.FieldCondition(key=field, match=models.MatchAny(any=list(value)))


def build_filter(filters: dict[str, Any] | None) -> models.Filter | None:
    """A Qdrant filter from search filters (None when there are none); unknown names raise
    ValueError, None values are unset.

    Filters: `tempo_min`/`tempo_max` (BPM) and `duration_min`/`duration_max` (seconds), inclusive;
    `key`, `mode`, `mood`, `genre`: a string, or a list matching any of its values.
    """
    must: list[models.Condition] = []
    ranges: dict[str, dict[str, float]] = {}
    for name, value in (filters or {}).items():
        if value is None:
            continue
        if name in RANGE_FILTERS:
            field, bound = RANGE_FILTERS[name]
            ranges.setdefault(field, {})[bound] = float(value)
        elif name in MATCH_FILTERS:
            must.append(_match(name, value))
        else:
            raise ValueError(f"unknown search filter {name!r}")
    must.extend(
        models.FieldCondition(key=field, range=models.Range(**bounds))
        for field, bounds in ranges.items()
    )
    return models.Filter(must=must) if must else None


class VectorIndex:
    def __init__(self, client: AsyncQdrantClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._ready: set[str] = set()  # collections known to exist

    @classmethod
    async def open(cls, settings: Settings) -> VectorIndex:
        if settings.qdrant_url:
            client = AsyncQdrantClient(
                url=settings.qdrant_url, api_key=settings.qdrant_api_key or None
            )
        else:
            client = AsyncQdrantClient(path=str(settings.data_path / "qdrant"))
        return cls(client, settings.qdrant_collection)

    async def close(self) -> None:
        await self.client.close()

    def collection(self, tenant: str) -> str:
        return f"{self.prefix}-{tenant}"

    async def _collections(self) -> list[str]:
        response = await self.client.get_collections()
        return [c.name for c in response.collections if c.name.startswith(f"{self.prefix}-")]

    async def _exists(self, name: str) -> bool:
        if name in self._ready:
            return True
        if await self.client.collection_exists(name):
            self._ready.add(name)
            return True
        return False

    async def ensure_collection(self, tenant: str) -> None:
        name = self.collection(tenant)
        if await self._exists(name):
            return
        try:
            await self.client.create_collection(
                name,
                vectors_config={
                    dim_name: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                    for dim_name, dim in VECTOR_DIMS.items()
                },
            )
        except Exception:
            if not await self.client.collection_exists(name):
                raise  # else another process created it meanwhile
        with warnings.catch_warnings():  # local mode says indexes have no effect there; fine
            warnings.filterwarnings("ignore", "Payload indexes have no effect", UserWarning)
            for field, schema in PAYLOAD_INDEXES.items():
                await self.client.create_payload_index(name, field, schema)
        self._ready.add(name)

    async def upsert(
        self,
        tenant: str,
        track_id: str,
        audio: list[float],
        semantic: list[float] | None,
        payload: dict[str, Any],
    ) -> str:
        """Replace the track's point (vectors and payload); returns its point id."""
        pid = point_id(tenant, track_id)
        vectors: dict[str, Any] = {AUDIO: audio}
        if semantic is not None:
            vectors[SEMANTIC] = semantic
        point = models.PointStruct(
            id=pid, vector=vectors, payload=payload | {"tenant": tenant, "track_id": track_id}
        )
        name = self.collection(tenant)
        await self.ensure_collection(tenant)
        try:
            await self.client.upsert(name, [point])
        except Exception:  # noqa: BLE001 - dropped meanwhile (a rebuild): create it, once more
            self._ready.discard(name)
            await self.ensure_collection(tenant)
            await self.client.upsert(name, [point])
        return pid

    async def get(
        self, tenant: str, track_id: str
    ) -> tuple[dict[str, list[float]], dict[str, Any]] | None:
        name = self.collection(tenant)
        if not await self._exists(name):
            return None
        records = await self.client.retrieve(
            name, [point_id(tenant, track_id)], with_payload=True, with_vectors=True
        )
        if not records:
            return None
        # every point is written by upsert: named dense vectors only
        vectors = cast("dict[str, list[float]]", records[0].vector)
        return dict(vectors), records[0].payload or {}

    async def delete(self, tenant: str, track_id: str) -> None:
        name = self.collection(tenant)
        if await self._exists(name):
            await self.client.delete(name, models.PointIdsList(points=[point_id(tenant, track_id)]))

    async def drop(self) -> None:
        """Delete every tenant's collection (a rebuild replays `embedded` events afterwards)."""
        for name in await self._collections():
            await self.client.delete_collection(name)
        self._ready.clear()

    async def count(self, tenant: str | None = None) -> int:
        names = [self.collection(tenant)] if tenant is not None else await self._collections()
        total = 0
        for name in names:
            if await self._exists(name):
                total += (await self.client.count(name, exact=True)).count
        return total

    async def search(
        self,
        tenant: str,
        vector_name: str,
        vector: list[float],
        k: int,
        *,
        filters: dict[str, Any] | None = None,
        exclude_track_id: str | Sequence[str] | None = None,
    ) -> list[VectorHit]:
        """The `k` nearest of the tenant's points by `vector_name` that pass `filters`."""
        if vector_name not in VECTOR_DIMS:
            raise ValueError(f"unknown vector {vector_name!r}; expected one of {list(VECTOR_DIMS)}")
        query_filter = build_filter(filters)
        name = self.collection(tenant)
        if not await self._exists(name):
            return []
        excluded = (
            {exclude_track_id} if isinstance(exclude_track_id, str) else set(exclude_track_id or ())
        )
        response = await self.client.query_points(
            name,
            query=vector,
            using=vector_name,
            query_filter=query_filter,
            limit=k + len(excluded),
            with_payload=True,
        )
        hits = [
            VectorHit(
                track_id=str((point.payload or {}).get("track_id", "")),
                score=point.score,
                payload=point.payload or {},
            )
            for point in response.points
        ]
        return [hit for hit in hits if hit.track_id not in excluded][:k]
