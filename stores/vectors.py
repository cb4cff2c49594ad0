"""The vector index: one Qdrant collection per tenant, named `audio` and `semantic` vectors.

Two backends, one behaviour: Qdrant Edge (Qdrant's engine in a process of its own, on disk under
`data_dir/qdrant-edge`) is the embedded default; a Qdrant server or cluster (qdrant-client) is
used when `qdrant_url` is set. Everything that is not the connection lives here and is shared:
collection names, point ids, payload stamping, the query track dropped from an over-fetched
result, and the filters, built once as backend-neutral conditions (`build_conditions`) that each
backend translates. Points are keyed by `point_id(tenant, track_id)` so re-indexing a track
overwrites it (idempotent sink). A collection per tenant isolates users by construction; every
filtered field has a payload index.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.payloads import AUDIO_VECTOR_DIM, SEMANTIC_VECTOR_DIM
from schemas.settings import Settings

AUDIO = "audio"
SEMANTIC = "semantic"
VECTOR_DIMS = {AUDIO: AUDIO_VECTOR_DIM, SEMANTIC: SEMANTIC_VECTOR_DIM}
POINT_NAMESPACE = uuid.UUID("5c1d0f3e-7a41-5b6e-9f57-3d2a8c4b1e90")

# payload field → index kind ("keyword" or "float"); every field a search filters on
PAYLOAD_INDEXES: dict[str, str] = {
    "tenant": "keyword",
    "track_id": "keyword",
    "key": "keyword",
    "mode": "keyword",
    "mood": "keyword",
    "genre": "keyword",
    "instruments": "keyword",
    "vocals": "keyword",
    "tempo_bpm": "float",
    "duration_s": "float",
}
# filter name → (payload field, range bound)
RANGE_FILTERS: dict[str, tuple[str, str]] = {
    "tempo_min": ("tempo_bpm", "gte"),
    "tempo_max": ("tempo_bpm", "lte"),
    "duration_min": ("duration_s", "gte"),
    "duration_max": ("duration_s", "lte"),
}
MATCH_FILTERS = frozenset({"key", "mode", "mood", "genre", "instruments", "vocals"})


def point_id(tenant: str, track_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{tenant}:{track_id}"))


@dataclass(frozen=True, slots=True)
class Match:
    """The field equals the value (one value) or any of the values (several)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """gte ≤ field ≤ lte; an absent bound is open."""

    field: str
    gte: float | None = None
    lte: float | None = None


Condition = Match | Range


class NotIndexedError(LookupError):
    """Tracks a search was to be like have no point (not indexed yet, or not the tenant's)."""

    def __init__(self, track_ids: Sequence[str]) -> None:
        super().__init__(list(track_ids))
        self.track_ids = list(track_ids)


class MissingPointsError(LookupError):
    """A backend's answer: these point ids, named by a query's `like`, do not exist."""


@dataclass(frozen=True, slots=True)
class Search:
    """One search of VectorIndex.search_many: the `k` nearest by `vector_name` passing
    `filters` (see build_conditions), without the excluded tracks. With `like` (track ids) the
    query is their stored vectors' mean instead of `vector` (left empty), looked up by the
    backend in the same request; they are excluded too."""

    vector_name: str
    vector: list[float]
    k: int
    filters: dict[str, Any] | None = None
    exclude_track_id: str | Sequence[str] | None = None
    like: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class VectorHit:
    track_id: str
    score: float
    payload: dict[str, Any]


def build_conditions(filters: dict[str, Any] | None) -> list[Condition]:
    """Conditions, all of which must hold, from search filters; unknown names raise ValueError,
    None values are unset.

    Filters: `tempo_min`/`tempo_max` (BPM) and `duration_min`/`duration_max` (seconds), inclusive;
    `key`, `mode`, `mood`, `genre`, `instruments`, `vocals`: a string, or a list matching any
    of its values.
    """
    conditions: list[Condition] = []
    ranges: dict[str, dict[str, float]] = {}
    for name, value in (filters or {}).items():
        if value is None:
            continue
        if name in RANGE_FILTERS:
            field, bound = RANGE_FILTERS[name]
            ranges.setdefault(field, {})[bound] = float(value)
        elif name in MATCH_FILTERS:
            values = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
            conditions.append(Match(name, values))
        else:
            raise ValueError(f"unknown search filter {name!r}")
    conditions.extend(Range(field, **bounds) for field, bounds in ranges.items())
    return conditions


HIT_FIELDS = ["tenant", "track_id"]
"""The payload a search hit carries: ranking needs the id, nothing more crosses the process."""


@dataclass(frozen=True, slots=True)
class Nearest:
    """One nearest-neighbour query in a batch (VectorBackend.query_many); with `like` (point
    ids) the query is the mean of those points' `vector_name` vectors, not `vector`."""

    vector_name: str
    vector: list[float]
    conditions: list[Condition]
    limit: int
    like: tuple[str, ...] = ()


def like_vector(query: Nearest, records: Iterable[Any]) -> list[float]:
    """The unit-length mean of the query's `like` points' vectors (cosine neighbours of several
    tracks at once), from a backend's records of them (each with an `id` and named vectors,
    `vector`); MissingPointsError names the points without one."""
    stored: dict[str, dict[str, list[float]]] = {
        str(record.id): record.vector or {} for record in records
    }
    missing = [pid for pid in query.like if query.vector_name not in stored.get(pid, {})]
    if missing:
        raise MissingPointsError(missing)
    vectors = [stored[pid][query.vector_name] for pid in query.like]
    total = [sum(values) for values in zip(*vectors, strict=True)]
    norm = math.sqrt(sum(x * x for x in total)) or 1.0
    return [x / norm for x in total]


StoredPoint = tuple[dict[str, list[float]], dict[str, Any]]
"""A point's named vectors and payload."""
Point = tuple[str, dict[str, Any], dict[str, Any]]
"""(point id, named vectors, payload) of a point to write."""


class VectorBackend(Protocol):
    """What a backend does with collections by name; VectorIndex adds tenants and ids."""

    async def collections(self, prefix: str) -> list[str]: ...
    async def exists(self, name: str) -> bool: ...
    async def create(self, name: str) -> None:
        """Create the collection (vectors, payload indexes); no-op when it exists."""

    async def upsert(self, name: str, points: list[Point]) -> None:
        """Write (point id, named vectors, payload) points, replacing any with the same id."""

    async def retrieve(self, name: str, pid: str) -> StoredPoint | None: ...
    async def delete(self, name: str, pid: str) -> None: ...
    async def drop(self, name: str) -> None: ...
    async def count(self, name: str) -> int: ...
    async def query_many(
        self, name: str, queries: list[Nearest]
    ) -> list[list[tuple[float, dict[str, Any]]]]:
        """For each query, (score, HIT_FIELDS payload) of its `limit` nearest points passing
        every condition, best first — all in one request. Raises MissingPointsError (the ids)
        when points a query is `like` do not exist."""

    async def optimize(self) -> None:
        """Build what writes left unindexed (HNSW graphs); a no-op for a server, which does it."""

    async def close(self) -> None: ...


Upsert = tuple[str, list[float], list[float] | None, dict[str, Any]]
"""(track id, audio vector, semantic vector or None, payload) of one track."""


class VectorIndex:
    def __init__(self, backend: VectorBackend, prefix: str) -> None:
        self.backend = backend
        self.prefix = prefix
        self._ready: set[str] = set()  # collections known to exist

    @classmethod
    async def open(cls, settings: Settings) -> VectorIndex:
        """A Qdrant server when `qdrant_url` is set, else Qdrant Edge under the data dir (an old
        qdrant-client local-mode folder there is migrated first, see stores.vectors_migrate)."""
        backend: VectorBackend
        if settings.qdrant_url:
            from stores.vectors_server import ServerBackend  # noqa: PLC0415 - one backend loads

            backend = ServerBackend.connect(settings.qdrant_url, settings.qdrant_api_key)
        else:
            from stores.vectors_edge import EdgeBackend  # noqa: PLC0415 - one backend loads

            backend = await EdgeBackend.start(settings.data_path)
        return cls(backend, settings.qdrant_collection)

    async def close(self) -> None:
        await self.backend.close()

    def collection(self, tenant: str) -> str:
        return f"{self.prefix}-{tenant}"

    async def _exists(self, name: str) -> bool:
        if name in self._ready:
            return True
        if await self.backend.exists(name):
            self._ready.add(name)
            return True
        return False

    async def ensure_collection(self, tenant: str) -> None:
        name = self.collection(tenant)
        if not await self._exists(name):
            await self.backend.create(name)
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
        return (await self.upsert_many(tenant, [(track_id, audio, semantic, payload)]))[0]

    async def upsert_many(self, tenant: str, tracks: Sequence[Upsert]) -> list[str]:
        """Replace several tracks' points in one write; returns their point ids."""
        points: list[Point] = []
        for track_id, audio, semantic, payload in tracks:
            vectors: dict[str, Any] = {AUDIO: audio}
            if semantic is not None:
                vectors[SEMANTIC] = semantic
            stamped = payload | {"tenant": tenant, "track_id": track_id}
            points.append((point_id(tenant, track_id), vectors, stamped))
        name = self.collection(tenant)
        await self.ensure_collection(tenant)
        try:
            await self.backend.upsert(name, points)
        except Exception:  # noqa: BLE001 - dropped meanwhile (a rebuild): create it, once more
            self._ready.discard(name)
            await self.ensure_collection(tenant)
            await self.backend.upsert(name, points)
        return [pid for pid, _, _ in points]

    async def get(self, tenant: str, track_id: str) -> StoredPoint | None:
        name = self.collection(tenant)
        if not await self._exists(name):
            return None
        return await self.backend.retrieve(name, point_id(tenant, track_id))

    async def delete(self, tenant: str, track_id: str) -> None:
        name = self.collection(tenant)
        if await self._exists(name):
            await self.backend.delete(name, point_id(tenant, track_id))

    async def drop(self) -> None:
        """Delete every tenant's collection (a rebuild replays `embedded` events afterwards)."""
        for name in await self.backend.collections(f"{self.prefix}-"):
            await self.backend.drop(name)
        self._ready.clear()

    async def count(self, tenant: str | None = None) -> int:
        if tenant is not None:
            names = [self.collection(tenant)]
        else:
            names = await self.backend.collections(f"{self.prefix}-")
        total = 0
        for name in names:
            if await self._exists(name):
                total += await self.backend.count(name)
        return total

    async def optimize(self) -> None:
        """Index what recent writes left unindexed now, rather than when writes pause."""
        await self.backend.optimize()

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
        search = Search(vector_name, vector, k, filters=filters, exclude_track_id=exclude_track_id)
        return (await self.search_many(tenant, [search]))[0]

    async def search_like(
        self,
        tenant: str,
        track_ids: Sequence[str],
        k: int,
        *,
        filters: dict[str, Any] | None = None,
    ) -> list[VectorHit]:
        """The `k` nearest of the tenant's points to the tracks' mean `audio` vector (not the
        tracks themselves), read and searched in one request. Raises NotIndexedError."""
        search = Search(AUDIO, [], k, filters=filters, like=track_ids)
        return (await self.search_many(tenant, [search]))[0]

    async def search_many(self, tenant: str, searches: Sequence[Search]) -> list[list[VectorHit]]:
        """Several searches (say, a fused search's inputs) in one request to the backend: with
        Edge one round trip to its process and one planned batch over the segments."""
        queries: list[Nearest] = []
        excluded: list[set[str]] = []
        named: dict[str, str] = {}  # point id → track id, of the tracks searches are like
        for search in searches:
            if search.vector_name not in VECTOR_DIMS:
                raise ValueError(
                    f"unknown vector {search.vector_name!r}; expected one of {list(VECTOR_DIMS)}"
                )
            exclude = search.exclude_track_id
            excluded.append({exclude} if isinstance(exclude, str) else set(exclude or ()))
            excluded[-1].update(search.like)
            like = tuple(point_id(tenant, track_id) for track_id in search.like)
            named.update(zip(like, search.like, strict=True))
            conditions = build_conditions(search.filters)
            limit = search.k + len(excluded[-1])
            queries.append(Nearest(search.vector_name, search.vector, conditions, limit, like))
        name = self.collection(tenant)
        if not searches or not await self._exists(name):
            if named:
                raise NotIndexedError(list(named.values()))
            return [[] for _ in searches]
        try:
            found = await self.backend.query_many(name, queries)
        except MissingPointsError as missing:
            raise NotIndexedError([named[pid] for pid in missing.args[0]]) from None
        return [
            [
                VectorHit(track_id=str(payload.get("track_id", "")), score=score, payload=payload)
                for score, payload in points
                if str(payload.get("track_id", "")) not in skip
            ][: search.k]
            for search, skip, points in zip(searches, excluded, found, strict=True)
        ]
