"""The vector index: one behavioural suite for both backends, Qdrant Edge (the embedded default,
in its owning process) and a Qdrant server through qdrant-client.

The server backend runs against `TONESTREAM_TEST_QDRANT_URL` when one is given; without it, the
same adapter code talks to qdrant-client's in-process implementation of the server API (`:memory:`),
so its request building, filters and results are still exercised end to end. Pure parts (filters,
request building) are tested alone; the Edge-only parts: migration of a local-mode folder, and an
event loop that keeps running while the owning process works.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as edge
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from schemas.payloads import AUDIO_VECTOR_DIM, SEMANTIC_VECTOR_DIM
from schemas.settings import Settings
from stores import vectors_edge_host
from stores.vectors import (
    HIT_FIELDS,
    PAYLOAD_INDEXES,
    Condition,
    Match,
    NotIndexedError,
    Range,
    Search,
    VectorIndex,
    build_conditions,
    point_id,
)
from stores.vectors_edge import EDGE_DIR, EdgeBackend
from stores.vectors_server import ServerBackend, collection_config, to_filter

pytestmark = pytest.mark.filterwarnings(
    # qdrant-client's in-process server stand-in keeps no payload indexes and says so
    "ignore:Payload indexes have no effect:UserWarning"
)


@pytest.fixture(params=["edge", "server"])
async def vectors(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    if request.param == "edge":
        index = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    elif url := os.environ.get("TONESTREAM_TEST_QDRANT_URL"):
        index = VectorIndex(ServerBackend.connect(url), f"test{uuid.uuid4().hex[:10]}")
    else:
        index = VectorIndex(ServerBackend(AsyncQdrantClient(location=":memory:")), "tracks")
    await index.ensure_collection("alice")
    await index.ensure_collection("alice")  # idempotent
    try:
        yield index
    finally:
        await index.drop()
        await index.close()


def _unit(seed: int, dim: int = AUDIO_VECTOR_DIM) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=dim)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def _payload(tempo: float, key: str, mood: list[str], duration: float = 180.0) -> dict[str, object]:
    return {"tempo_bpm": tempo, "key": key, "mode": "minor", "mood": mood, "duration_s": duration}


async def test_upsert_replaces_one_point(vectors: VectorIndex) -> None:
    pid = await vectors.upsert("alice", "trk1", _unit(1), None, _payload(120, "A", ["calm"]))
    assert pid == point_id("alice", "trk1") != point_id("bob", "trk1")
    semantic = _unit(2, SEMANTIC_VECTOR_DIM)
    await vectors.upsert("alice", "trk1", _unit(1), semantic, _payload(121, "A", ["happy"]))
    assert await vectors.count() == 1
    stored = await vectors.get("alice", "trk1")
    assert stored is not None
    named, payload = stored
    assert set(named) == {"audio", "semantic"}
    assert np.allclose(named["semantic"], semantic, atol=1e-6)
    assert payload["tempo_bpm"] == 121
    assert (payload["tenant"], payload["track_id"]) == ("alice", "trk1")
    assert await vectors.get("bob", "trk1") is None


async def test_search_is_isolated_per_tenant(vectors: VectorIndex) -> None:
    query = _unit(7)
    await vectors.upsert("alice", "a1", _unit(1), None, _payload(120, "A", ["calm"]))
    await vectors.upsert("bob", "b1", query, None, _payload(120, "A", ["calm"]))  # the best match
    hits = await vectors.search("alice", "audio", query, k=10)
    assert [hit.track_id for hit in hits] == ["a1"]
    assert hits[0].payload["tenant"] == "alice"
    assert [hit.track_id for hit in await vectors.search("bob", "audio", query, k=10)] == ["b1"]
    assert (await vectors.search("carol", "audio", query, k=10)) == []
    assert (await vectors.count("alice"), await vectors.count("bob"), await vectors.count()) == (
        1,
        1,
        2,
    )


async def test_searches_in_one_batch_answer_as_each_alone(vectors: VectorIndex) -> None:
    """A fused search's inputs go to the backend as one batch; each answers as alone would,
    hits carrying only HIT_FIELDS of the payload."""
    for n in range(12):
        semantic = _unit(100 + n, SEMANTIC_VECTOR_DIM)
        payload = _payload(80 + 10 * n, "A" if n % 2 else "C", ["calm"])
        await vectors.upsert("alice", f"t{n}", _unit(n), semantic, payload)
    searches = [
        Search("audio", _unit(3), 4, exclude_track_id="t3"),
        Search("semantic", _unit(7, SEMANTIC_VECTOR_DIM), 5, filters={"key": "A"}),
        Search("audio", _unit(50), 3, filters={"tempo_min": 120}, exclude_track_id=["t5", "t6"]),
    ]
    batch = await vectors.search_many("alice", searches)
    alone = [
        await vectors.search(
            "alice",
            search.vector_name,
            search.vector,
            search.k,
            filters=search.filters,
            exclude_track_id=search.exclude_track_id,
        )
        for search in searches
    ]
    assert [[hit.track_id for hit in hits] for hits in batch] == [
        [hit.track_id for hit in hits] for hits in alone
    ]
    assert [len(hits) for hits in batch] == [4, 5, 3]
    assert "t3" not in {hit.track_id for hit in batch[0]}
    assert all(int(hit.track_id[1:]) % 2 for hit in batch[1])
    assert {hit.track_id for hit in batch[2]}.isdisjoint({"t0", "t1", "t2", "t3", "t5", "t6"})
    assert all(set(hit.payload) == set(HIT_FIELDS) for hits in batch for hit in hits)
    assert await vectors.search_many("carol", searches[:1]) == [[]]
    with pytest.raises(ValueError, match="unknown vector"):
        await vectors.search_many("alice", [Search("lyrics", _unit(1), 3)])


async def test_search_like_stored_tracks_reads_their_vectors_in_the_same_request(
    vectors: VectorIndex,
) -> None:
    """ "Similar to these tracks": the backend reads their stored vectors and searches with their
    mean in one request; the tracks are not their own hits; a track without a point (another
    tenant's, or not indexed yet) is named, not searched around."""
    for n in range(12):
        await vectors.upsert("alice", f"t{n}", _unit(n), None, _payload(80 + 10 * n, "A", []))
    await vectors.upsert("bob", "b1", _unit(99), None, _payload(120, "A", []))
    mean = np.asarray(_unit(2)) + np.asarray(_unit(5))
    expected = await vectors.search(
        "alice", "audio", [float(x) for x in mean], 4, exclude_track_id=["t2", "t5"]
    )
    hits = await vectors.search_like("alice", ["t2", "t5"], 4)
    assert [hit.track_id for hit in hits] == [hit.track_id for hit in expected]
    assert [hit.score for hit in hits] == pytest.approx([hit.score for hit in expected], abs=1e-5)
    assert len(hits) == 4
    assert {"t2", "t5"}.isdisjoint(hit.track_id for hit in hits)
    filtered = await vectors.search_like("alice", ["t2"], 10, filters={"tempo_min": 150})
    assert {hit.track_id for hit in filtered} == {"t7", "t8", "t9", "t10", "t11"}
    with pytest.raises(NotIndexedError) as missing:
        await vectors.search_like("alice", ["t1", "b1", "nope"], 4)
    assert missing.value.track_ids == ["b1", "nope"]
    with pytest.raises(NotIndexedError):
        await vectors.search_like("carol", ["t1"], 4)  # no collection at all


async def test_search_filters(vectors: VectorIndex) -> None:
    tracks = {
        "slow": _payload(80, "C", ["calm", "dark"], duration=60),
        "mid": _payload(120, "A", ["happy"], duration=200),
        "fast": _payload(174, "A", ["energetic", "dark"], duration=300),
    }
    for seed, (track_id, payload) in enumerate(tracks.items()):
        semantic = _unit(seed, SEMANTIC_VECTOR_DIM) if track_id != "slow" else None
        await vectors.upsert("alice", track_id, _unit(seed), semantic, payload)

    async def found(vector_name: str = "audio", **filters: object) -> set[str]:
        dim = AUDIO_VECTOR_DIM if vector_name == "audio" else SEMANTIC_VECTOR_DIM
        exclude = filters.pop("exclude", None)
        hits = await vectors.search(
            "alice",
            vector_name,
            _unit(99, dim),
            k=10,
            filters=filters,
            exclude_track_id=exclude,  # type: ignore[arg-type]
        )
        return {hit.track_id for hit in hits}

    assert await found() == {"slow", "mid", "fast"}
    assert await found(tempo_min=100) == {"mid", "fast"}
    assert await found(tempo_min=100, tempo_max=150) == {"mid"}
    assert await found(duration_max=250, tempo_min=None) == {"slow", "mid"}
    assert await found(key="A") == {"mid", "fast"}
    assert await found(mode="major") == set()
    assert await found(mood="dark") == {"slow", "fast"}
    assert await found(mood=["happy", "calm"]) == {"slow", "mid"}
    assert await found(genre="techno") == set()
    assert await found(exclude="mid") == {"slow", "fast"}
    assert await found("semantic") == {"mid", "fast"}  # "slow" has no semantic vector
    with pytest.raises(ValueError, match="unknown search filter"):
        await found(bpm=120)
    with pytest.raises(ValueError, match="unknown vector"):
        await vectors.search("alice", "lyrics", _unit(1), k=1)


async def test_delete_and_drop(vectors: VectorIndex) -> None:
    await vectors.upsert("alice", "trk1", _unit(1), None, _payload(120, "A", ["calm"]))
    await vectors.upsert("alice", "trk2", _unit(2), None, _payload(120, "A", ["calm"]))
    await vectors.delete("alice", "trk1")
    await vectors.delete("alice", "trk1")  # idempotent
    assert await vectors.get("alice", "trk1") is None
    assert await vectors.count("alice") == 1
    await vectors.drop()
    assert await vectors.count() == 0
    assert await vectors.search("alice", "audio", _unit(1), k=5) == []
    await vectors.upsert("alice", "trk3", _unit(3), None, _payload(120, "A", ["calm"]))
    assert await vectors.count("alice") == 1  # a dropped collection comes back on upsert


# --- request building (no engine) ---------------------------------------------------------------


def test_filters_become_conditions() -> None:
    conditions = build_conditions(
        {"tempo_min": 100, "tempo_max": "140", "key": "A", "mood": ["calm", "dark"], "genre": None}
    )
    assert conditions == [
        Match("key", ("A",)),
        Match("mood", ("calm", "dark")),
        Range("tempo_bpm", gte=100.0, lte=140.0),
    ]
    assert build_conditions(None) == build_conditions({"mode": None}) == []
    with pytest.raises(ValueError, match="unknown search filter 'bpm'"):
        build_conditions({"bpm": 120})


def test_both_backends_build_the_same_filter() -> None:
    conditions: list[Condition] = [
        Match("key", ("A",)),
        Match("mood", ("calm", "dark")),
        Range("duration_s", lte=60),
    ]
    assert to_filter(conditions) == models.Filter(
        must=[
            models.FieldCondition(key="key", match=models.MatchValue(value="A")),
            models.FieldCondition(key="mood", match=models.MatchAny(any=["calm", "dark"])),
            models.FieldCondition(key="duration_s", range=models.Range(lte=60)),
        ]
    )
    built = vectors_edge_host.to_filter(conditions)
    assert built is not None
    assert built.must is not None
    key, mood, duration = built.must
    assert isinstance(key, edge.FieldCondition)
    assert isinstance(key.match, edge.MatchValue)
    assert (key.key, key.match.value) == ("key", "A")
    assert isinstance(mood, edge.FieldCondition)
    assert isinstance(mood.match, edge.MatchAny)
    assert (mood.key, mood.match.value) == ("mood", ["calm", "dark"])
    assert isinstance(duration, edge.FieldCondition)
    assert isinstance(duration.range, edge.RangeFloat)
    assert (duration.key, duration.range.gte, duration.range.lte) == ("duration_s", None, 60)
    assert to_filter([]) is None
    assert vectors_edge_host.to_filter([]) is None
    server_dims = {name: params.size for name, params in collection_config().items()}
    edge_dims = {name: params.size for name, params in vectors_edge_host.config().vectors.items()}
    assert server_dims == edge_dims == {"audio": AUDIO_VECTOR_DIM, "semantic": SEMANTIC_VECTOR_DIM}


async def test_edge_indexes_every_filtered_field(tmp_path: Path) -> None:
    backend = await EdgeBackend.start(tmp_path)
    try:
        await backend.create("tracks-alice")
        shard_dir = tmp_path / EDGE_DIR / "tracks-alice"
        assert (shard_dir / vectors_edge_host.CONFIG_FILE).exists()
        with pytest.raises(ValueError, match="invalid collection name"):
            await backend.create("../escape")
    finally:
        await backend.close()
    shard = edge.EdgeShard.load(str(shard_dir))  # closed by the backend: open it here
    try:
        schema = shard.info().payload_schema
        assert {field: info.data_type for field, info in schema.items()} == {
            field: vectors_edge_host._SCHEMAS[kind] for field, kind in PAYLOAD_INDEXES.items()
        }
    finally:
        shard.close()


# --- migration from qdrant-client local mode ---------------------------------------------------


def _vectors(seed: int) -> dict[str, Any]:
    """An audio vector, and a semantic one for odd seeds."""
    semantic = {"semantic": _unit(seed, SEMANTIC_VECTOR_DIM)} if seed % 2 else {}
    return {"audio": _unit(seed)} | semantic


def _write_local_mode(folder: Path, tracks: dict[str, int]) -> None:
    """What an older Tonestream left: local mode under data/qdrant, one collection per tenant."""
    client = QdrantClient(path=str(folder))
    try:
        client.create_collection("tracks-alice", vectors_config=collection_config())
        client.upsert(
            "tracks-alice",
            [
                models.PointStruct(
                    id=point_id("alice", track_id),
                    vector=_vectors(seed),
                    payload=_payload(90 + seed, "A", ["calm"]) | {"track_id": track_id},
                )
                for track_id, seed in tracks.items()
            ],
        )
    finally:
        client.close()


def _entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_local_mode_folder_is_migrated_on_start(tmp_path: Path) -> None:
    tracks = {f"trk{seed}": seed for seed in range(1, 8)}
    _write_local_mode(tmp_path / "qdrant", tracks)

    index = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    try:
        assert await index.count("alice") == len(tracks)
        for track_id, seed in tracks.items():
            stored = await index.get("alice", track_id)
            assert stored is not None
            assert np.allclose(stored[0]["audio"], _unit(seed), atol=1e-6)
            assert ("semantic" in stored[0]) == bool(seed % 2)
            assert stored[1]["tempo_bpm"] == 90 + seed
        hits = await index.search("alice", "audio", _unit(3), k=1, filters={"tempo_min": 93})
        assert [hit.track_id for hit in hits] == ["trk3"]
    finally:
        await index.close()
    edge_dir, kept = _entries(tmp_path)
    assert edge_dir == EDGE_DIR
    assert kept.startswith("qdrant-local-migrated-")  # the old folder is kept, never deleted
    old = QdrantClient(path=str(tmp_path / kept))
    try:
        assert old.count("tracks-alice").count == len(tracks)
    finally:
        old.close()

    again = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    try:
        assert await again.count() == len(tracks)  # the next start finds Edge only
    finally:
        await again.close()


async def test_a_failed_migration_keeps_the_old_folder(tmp_path: Path) -> None:
    _write_local_mode(tmp_path / "qdrant", {"trk1": 1, "trk2": 2})
    holder = QdrantClient(path=str(tmp_path / "qdrant"))  # another process still owns it
    try:
        with pytest.raises(RuntimeError, match="already accessed by another instance"):
            await VectorIndex.open(Settings(data_dir=str(tmp_path)))
    finally:
        holder.close()
    assert (tmp_path / "qdrant").is_dir()
    index = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    try:
        assert await index.count("alice") == 2  # the next start migrates it
    finally:
        await index.close()


# --- the event loop stays free -----------------------------------------------------------------


async def _ticks_while(work: asyncio.Future[Any]) -> int:
    """How often a 1-ms sleeper on this event loop woke up before `work` finished."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.001)
        ticks += 1
    await work
    return ticks


async def test_edge_work_never_blocks_the_event_loop(tmp_path: Path) -> None:
    index = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    try:
        rng = np.random.default_rng(0)
        tracks = [
            (
                f"t{i}",
                _unit(i),
                _unit(i, SEMANTIC_VECTOR_DIM),
                _payload(float(rng.uniform(60, 180)), "A", ["calm"]),
            )
            for i in range(2_000)
        ]
        # one call that keeps the owning process busy for a while: a 2,000-point write
        write = asyncio.ensure_future(index.upsert_many("alice", tracks))
        assert await _ticks_while(write) >= 5  # a sync call on the loop would allow none
        assert await index.count("alice") == 2_000

        searches = asyncio.ensure_future(
            asyncio.gather(
                *(
                    index.search("alice", "semantic", _unit(i, SEMANTIC_VECTOR_DIM), 50)
                    for i in range(200)
                )
            )
        )
        assert await _ticks_while(searches) >= 5
        assert all(len(hits) == 50 for hits in searches.result())
    finally:
        await index.close()
