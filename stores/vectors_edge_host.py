"""The Qdrant Edge shards, in the one process that owns them (see stores.vectors_edge).

Qdrant Edge runs Qdrant's engine in-process, but its calls hold the GIL while they work (an
`optimize` that builds HNSW graphs holds it for seconds to minutes), so they run here, in a
process of their own, never in the process whose event loop serves the gateway and the stages.
Each function is one request from the parent; they run one at a time, and the shards they
opened stay open between requests. One shard (a directory under the root) per collection.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, cast

import qdrant_edge as edge

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

CONFIG_FILE = "edge_config.json"  # written by Edge into every shard directory
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_SCHEMAS = {"keyword": edge.PayloadSchemaType.Keyword, "float": edge.PayloadSchemaType.Float}
# HNSW: Qdrant's defaults but a lower ef_construct: graphs build ~2x faster on a small box at
# a recall that the (re-ranked, fused) result lists do not notice.
HNSW = edge.HnswIndexConfig(m=16, ef_construct=64, full_scan_threshold=10_000)

_root = Path()
_shards: dict[str, edge.EdgeShard] = {}


def config() -> edge.EdgeConfig:
    vectors = {
        name: edge.EdgeVectorParams(size=dim, distance=edge.Distance.Cosine)
        for name, dim in VECTOR_DIMS.items()
    }
    # Payloads in RAM: a search reads every hit's payload, and from the on-disk store the first
    # reads after a load or an index build cost 2-3x (45k points: p95 6-7 ms -> 2-3 ms cold).
    return edge.EdgeConfig(vectors=vectors, hnsw_config=HNSW, on_disk_payload=False)


def to_filter(conditions: list[Condition]) -> edge.Filter | None:
    """The Edge filter requiring every condition (None when there are none)."""
    must: list[Any] = []
    for condition in conditions:
        if isinstance(condition, Match):
            match: edge.MatchValue | edge.MatchAny = (
                edge.MatchValue(condition.values[0])
                if len(condition.values) == 1
                else edge.MatchAny(list(condition.values))
            )
            must.append(edge.FieldCondition(key=condition.field, match=match))
        else:
            bounds = edge.RangeFloat(gte=condition.gte, lte=condition.lte)
            must.append(edge.FieldCondition(key=condition.field, range=bounds))
    return edge.Filter(must=must) if must else None


def init(root: str) -> None:
    """Process initializer: where the shards live."""
    global _root  # noqa: PLW0603 - this process's one root, set once when it starts
    _root = Path(root)
    _root.mkdir(parents=True, exist_ok=True)


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise ValueError(f"invalid collection name {name!r}")
    return _root / name


def exists(name: str) -> bool:
    return name in _shards or (_path(name) / CONFIG_FILE).exists()


def _shard(name: str) -> edge.EdgeShard:
    shard = _shards.get(name)
    if shard is None:
        if not exists(name):
            raise LookupError(f"collection {name!r} does not exist")
        # with this version's config, so segments built from now on follow it
        shard = _shards[name] = edge.EdgeShard.load(str(_path(name)), config())
    return shard


def collections(prefix: str) -> list[str]:
    if not _root.is_dir():
        return []
    found = {path.parent.name for path in _root.glob(f"*/{CONFIG_FILE}")} | set(_shards)
    return sorted(name for name in found if name.startswith(prefix))


def create(name: str) -> None:
    if exists(name):
        shard = _shard(name)
    else:
        path = _path(name)
        shutil.rmtree(path, ignore_errors=True)  # a create that died before its config
        shard = _shards[name] = edge.EdgeShard.create(str(path), config())
    indexed = shard.info().payload_schema
    for field, kind in PAYLOAD_INDEXES.items():
        if field not in indexed:
            shard.update(edge.UpdateOperation.create_field_index(field, _SCHEMAS[kind]))


def upsert(name: str, points: list[Point]) -> None:
    batch = [edge.Point(pid, vectors, payload) for pid, vectors, payload in points]
    _shard(name).update(edge.UpdateOperation.upsert_points(batch))


def retrieve(name: str, pid: str) -> StoredPoint | None:
    records = _shard(name).retrieve([pid], with_payload=True, with_vector=True)
    if not records:
        return None
    # every point is written with named dense vectors
    vectors = cast("dict[str, list[float]]", records[0].vector)
    return dict(vectors), records[0].payload or {}


def delete(name: str, pid: str) -> None:
    _shard(name).update(edge.UpdateOperation.delete_points([pid]))


def drop(name: str) -> None:
    shard = _shards.pop(name, None)
    if shard is not None:
        shard.close()
    shutil.rmtree(_path(name), ignore_errors=True)


def flush(name: str) -> None:
    _shard(name).flush()


def count(name: str) -> int:
    return _shard(name).count(edge.CountRequest(exact=True))


def _like(shard: edge.EdgeShard, query: Nearest) -> list[float]:
    """The mean of the `like` points' vectors (stores.vectors.like_vector)."""
    records = shard.retrieve(list(query.like), with_payload=False, with_vector=[query.vector_name])
    return like_vector(query, records)


def query_many(name: str, queries: list[Nearest]) -> list[list[tuple[float, dict[str, Any]]]]:
    """One planned batch (Edge's query_batch: the queries share a pass over the segments);
    the vectors of queries `like` stored points are read first, in this same request."""
    shard = _shard(name)
    requests = [
        edge.QueryRequest(
            limit=query.limit,
            query=edge.Query.Nearest(
                _like(shard, query) if query.like else query.vector, using=query.vector_name
            ),
            filter=to_filter(query.conditions),
            with_payload=HIT_FIELDS,
        )
        for query in queries
    ]
    batch = shard.query_batch(edge.QueryBatchRequest(requests))
    return [[(point.score, point.payload or {}) for point in points] for points in batch]


def optimize() -> bool:
    """Index every open shard's unindexed segments; True if anything changed.

    A shard that changed is flushed at once: until a flush, Edge keeps the segments an optimize
    replaced on disk and mapped, so each build held the library's vectors twice in this
    process's memory (measured: 216 → 142 MB RSS at 10k points on the flush)."""
    changed = False
    for shard in _shards.values():
        if shard.optimize():
            shard.flush()
            changed = True
    return changed


def close() -> None:
    while _shards:
        _, shard = _shards.popitem()
        shard.flush()
        shard.close()
