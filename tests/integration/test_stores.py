"""The storage adapters against real servers: moto's S3 and a local folder (the same behavioural
tests for both) and the catalog on SecantusDB (the vector index has its own suite:
test_vectors.py)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymongo.errors import DuplicateKeyError

from schemas.api import SearchFilters
from schemas.events import Progress, ProgressState
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore, LocalBlobStore, S3BlobStore, open_blob_store
from stores.catalog import Catalog

# --- blobs -------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def blob_store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: Callable[[str], str]
) -> BlobStore:
    if request.param == "local":
        store = open_blob_store(Settings(data_dir=str(tmp_path)))
        assert isinstance(store, LocalBlobStore)
        return store
    endpoint: str = request.getfixturevalue("s3_server")
    settings = Settings(
        s3_endpoint=endpoint,
        s3_access_key="test",
        s3_secret_key="test-secret",
        s3_bucket=unique_name("blobs"),
        s3_region="us-east-1",
    )
    store = open_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    return store


async def _chunks(data: bytes, size: int, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, start in enumerate(range(0, len(data), size)):
        if index == fail_after:
            raise ConnectionResetError("client went away")
        yield data[start : start + size]


async def test_bytes_round_trip(blob_store: BlobStore) -> None:
    assert await blob_store.put_bytes("t1/a/original", b"first") == 5
    assert await blob_store.put_bytes("t1/a/original", b"second!") == 7
    assert await blob_store.get_bytes("t1/a/original") == b"second!"
    assert await blob_store.exists("t1/a/original")
    assert await blob_store.size("t1/a/original") == 7


async def test_stream_hashes_and_stores_everything(blob_store: BlobStore) -> None:
    data = np.random.default_rng(1).bytes(6 * 1024 * 1024 + 123)  # > one S3 multipart part
    size, sha256 = await blob_store.put_stream("t1/a/original", _chunks(data, 64 * 1024))
    assert (size, sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await blob_store.get_bytes("t1/a/original") == data


async def test_failed_stream_leaves_nothing(blob_store: BlobStore) -> None:
    with pytest.raises(ConnectionResetError):
        await blob_store.put_stream("t1/a/original", _chunks(b"x" * 10_000, 1000, fail_after=5))
    assert not await blob_store.exists("t1/a/original")
    assert await blob_store.delete_prefix("t1/") == 0  # no temp or partial file either


async def test_put_file_and_local_copy(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.wav"
    source.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    assert await blob_store.put_file("t1/a/original.wav", source) == source.stat().st_size
    async with blob_store.local_copy("t1/a/original.wav") as path:
        assert path.read_bytes() == source.read_bytes()
        assert path.name == "original.wav"
    assert path.exists() == isinstance(blob_store, LocalBlobStore)  # S3 copies are temporary


async def test_read_range(blob_store: BlobStore) -> None:
    await blob_store.put_bytes("t1/a/original", b"0123456789")
    assert await blob_store.read_range("t1/a/original", 2, 3) == b"234"
    assert await blob_store.read_range("t1/a/original", 8, 10) == b"89"
    assert await blob_store.read_range("t1/a/original", 10, 5) == b""
    with pytest.raises(ValueError, match="invalid range"):
        await blob_store.read_range("t1/a/original", -1, 5)


async def test_delete_and_delete_prefix(blob_store: BlobStore) -> None:
    keys = ["t1/a/original", "t1/a/decoded.f32", "t1/ab/original", "t2/a/original"]
    for key in keys:
        await blob_store.put_bytes(key, key.encode())
    await blob_store.delete("t1/a/decoded.f32")
    await blob_store.delete("t1/a/decoded.f32")  # idempotent
    assert not await blob_store.exists("t1/a/decoded.f32")
    await blob_store.put_bytes("t1/a/decoded.f32", b"again")
    assert await blob_store.delete_prefix("t1/a/") == 2
    assert await blob_store.delete_prefix("t1/a/") == 0
    assert [await blob_store.exists(key) for key in keys] == [False, False, True, True]


async def test_missing_key(blob_store: BlobStore) -> None:
    assert not await blob_store.exists("t1/none/original")
    with pytest.raises(BlobNotFound) as raised:
        await blob_store.get_bytes("t1/none/original")
    assert isinstance(raised.value, KeyError)
    assert raised.value.key == "t1/none/original"
    with pytest.raises(BlobNotFound):
        await blob_store.size("t1/none/original")
    with pytest.raises(BlobNotFound):
        await blob_store.read_range("t1/none/original", 0, 10)
    with pytest.raises(BlobNotFound):
        async with blob_store.local_copy("t1/none/original"):
            pass


@pytest.mark.parametrize("key", ["", "../etc/passwd", "/abs/key", "a\\b", "a//b", "a/./b", "a/"])
async def test_unsafe_keys_are_refused(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blob_store.put_bytes(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await blob_store.get_bytes(key)


async def test_empty_prefix_is_refused(blob_store: BlobStore) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blob_store.delete_prefix("")


async def test_local_store_writes_in_place(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.put_stream("t1/a/original", _chunks(b"abc" * 1000, 100))
    assert os.listdir(tmp_path / "t1" / "a") == ["original"]  # the temp file was renamed
    async with store.local_copy("t1/a/original") as path:
        assert path == tmp_path / "t1" / "a" / "original"  # no copy


# --- catalog -----------------------------------------------------------------------------------


@pytest.fixture
async def catalog(mongo_server: str, unique_name: Callable[[str], str]) -> AsyncIterator[Catalog]:
    catalog = await Catalog.open(mongo_server, unique_name("catalog"))
    await catalog.ensure_indexes()
    await catalog.ensure_indexes()  # idempotent
    try:
        yield catalog
    finally:
        await catalog.client.drop_database(catalog.db.name)
        await catalog.close()


def _progress(
    stage: str, state: ProgressState, seq: int, message: str = ""
) -> tuple[Progress, int]:
    """An event at PROGRESS sequence `seq`, stamped by a publisher clock running backwards:
    the projection orders by the sequence, never by `at`."""
    at = 1000.0 - seq
    return Progress(
        tenant="alice", track_id="trk1", stage=stage, state=state, at=at, message=message
    ), seq


async def test_unique_track_index(catalog: Catalog) -> None:
    await catalog.ping()
    await catalog.tracks.insert_one({"tenant": "alice", "track_id": "trk1"})
    await catalog.tracks.insert_one({"tenant": "bob", "track_id": "trk1"})
    with pytest.raises(DuplicateKeyError):
        await catalog.tracks.insert_one({"tenant": "alice", "track_id": "trk1"})


async def test_upsert_is_idempotent(catalog: Catalog) -> None:
    await catalog.upsert_track("alice", "trk1", {"filename": "a.wav", "sha256": "ab"})
    await catalog.upsert_track("alice", "trk1", {"filename": "a.wav", "sha256": "ab"})
    await catalog.upsert_track("alice", "trk1", {"features": {"tempo_bpm": 120.0}})
    await catalog.upsert_track("bob", "trk2", {"sha256": "ab"})
    assert await catalog.get_track("alice", "trk1") == {
        "tenant": "alice",
        "track_id": "trk1",
        "filename": "a.wav",
        "sha256": "ab",
        "features": {"tempo_bpm": 120.0},
        # the words of its file name (and tags), `=` for the words it was named by: text search
        "keywords": ["a", "wav", "=a"],
        "concepts": {},
        "sort_text": {"filename": "a.wav"},  # what the file-name sort compares
        "search_version": 3,
    }
    assert await catalog.get_track("bob", "trk1") is None
    assert await catalog.count_tracks() == 2
    assert await catalog.count_tracks("alice") == 1
    assert await catalog.count_tracks(sha256="ab") == 2
    assert await catalog.count_tracks("bob", sha256="cd") == 0
    assert await catalog.delete_track("alice", "trk1")
    assert not await catalog.delete_track("alice", "trk1")
    assert await catalog.count_tracks("alice") == 0


async def test_progress_projection_never_moves_backwards(catalog: Catalog) -> None:
    await catalog.apply_progress(*_progress("decode", "finished", seq=100))  # no track yet
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert track["status"] == "decode"
    assert track["stages"]["decode"] == {
        "state": "finished",
        "percent": 0.0,
        "message": "",
        "at": 900.0,
        "seq": 100,
    }

    await catalog.apply_progress(*_progress("decode", "started", seq=50))  # late, stale
    await catalog.apply_progress(*_progress("features", "finished", seq=200))
    await catalog.apply_progress(*_progress("decode", "finished", seq=150))  # newer for its stage
    await catalog.apply_progress(*_progress("features", "finished", seq=200))  # redelivered
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert track["stages"]["decode"]["state"] == "finished"
    assert track["stages"]["decode"]["seq"] == 150
    assert track["status"] == "features"  # not back to "decode"
    assert await catalog.count_tracks("alice") == 1


async def test_progress_failure_and_recovery(catalog: Catalog) -> None:
    await catalog.upsert_track("alice", "trk1", {"filename": "a.mp3"})
    await catalog.apply_progress(*_progress("tagging", "started", seq=10))
    await catalog.apply_progress(*_progress("tagging", "failed", seq=20, message="LLM timed out"))
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert (track["status"], track["failure_reason"], track["failed_stage"]) == (
        "failed",
        "LLM timed out",
        "tagging",
    )
    assert track["filename"] == "a.mp3"

    await catalog.apply_progress(*_progress("tagging", "finished", seq=15))  # older than failure
    assert (await catalog.get_track("alice", "trk1") or {})["status"] == "failed"

    await catalog.apply_progress(*_progress("indexing", "finished", seq=30))  # a replay succeeded
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert track["status"] == "indexed"
    assert "failure_reason" not in track
    assert await catalog.count_tracks("alice", status="indexed") == 1


async def test_status_never_moves_back_in_the_pipeline(catalog: Catalog) -> None:
    """A replay re-runs an earlier stage of an indexed track: it stays indexed."""
    await catalog.apply_progress(*_progress("indexing", "finished", seq=100))
    await catalog.apply_progress(*_progress("decode", "finished", seq=200))
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert track["status"] == "indexed"
    assert track["stages"]["decode"]["seq"] == 200


async def test_a_failed_replay_keeps_the_track_indexed(catalog: Catalog) -> None:
    await catalog.apply_progress(*_progress("indexing", "finished", seq=100))
    await catalog.apply_progress(*_progress("embedding", "failed", seq=200, message="CLIP hung"))
    track = await catalog.get_track("alice", "trk1")
    assert track is not None
    assert track["status"] == "indexed"
    assert "failure_reason" not in track
    assert track["stages"]["embedding"]["state"] == "failed"  # the stage still shows it


async def test_a_deleted_track_is_not_brought_back(catalog: Catalog) -> None:
    await catalog.apply_progress(*_progress("decode", "finished", seq=10))
    await catalog.mark_deleted("alice", "trk1")
    assert await catalog.delete_track("alice", "trk1")
    await catalog.apply_progress(*_progress("features", "finished", seq=20))
    assert await catalog.get_track("alice", "trk1") is None
    assert await catalog.is_deleted("alice", "trk1")
    assert not await catalog.is_deleted("alice", "trk2")


async def _track(catalog: Catalog, n: int, filename: str, at: float, tags: dict[str, Any]) -> str:
    track_id = f"trk{n}"
    fields = {"filename": filename, "sha256": f"{n:064x}", "created_at": at}
    assert await catalog.create_track("alice", track_id, fields) is None
    if tags:
        await catalog.upsert_track("alice", track_id, {"filename": filename, "tags": tags})
    return track_id


async def test_keywords_are_indexed_words_ranked_by_the_server(catalog: Catalog) -> None:
    calm_piano = {"mood": ["calm"], "genre": ["piano"], "description": "A calm piano piece"}
    await _track(catalog, 1, "Night_Piano.flac", 1.0, calm_piano)
    await _track(catalog, 2, "calm-waves.wav", 2.0, {"mood": ["calm"], "genre": ["ambient"]})
    await _track(catalog, 3, "C#_minor loop.mp3", 3.0, {})
    await _track(catalog, 4, "calmness.mp3", 4.0, {})  # "calm" is a word, not a substring
    stored = await catalog.get_track("alice", "trk1")
    assert stored is not None
    assert stored["keywords"] == [
        *["night", "piano", "flac", "a", "calm", "piece"],  # file name, description, labels
        *["=night", "=piano"],  # the file name: what a person named it
        *["~piano:0.4", "~piano:0.1", "~calm:0.4", "~calm:0.1"],  # its tag concepts' buckets
    ]
    found = await catalog.keyword_search("alice", ["calm", "piano"], SearchFilters(), 10)
    # without model scores a listed label counts 0.5 and a word of the file name 1.0: the mean
    # of (calm 0.5, piano 1.0) beats the mean of (calm 1.0, no piano)
    assert [(doc["track_id"], score) for doc, score in found] == [("trk1", 0.75), ("trk2", 0.5)]
    assert [
        d["track_id"] for d, _ in await catalog.keyword_search("alice", ["c#"], SearchFilters(), 5)
    ] == ["trk3"]
    limited = await catalog.keyword_search("alice", ["calm"], SearchFilters(), 1)
    assert [doc["track_id"] for doc, _ in limited] == ["trk2"]  # equal matches: newest first
    listed, _ = await catalog.list_tracks(
        "alice", SearchFilters(), words=["calm", "piano"], status=None, cursor=None, limit=10
    )
    assert [doc["track_id"] for doc in listed] == ["trk1"]  # a listing needs every word

    await catalog.tracks.update_one(
        {"track_id": "trk2"},
        {"$unset": {"keywords": "", "concepts": "", "sort_text": "", "search_version": ""}},
    )
    older = {"$set": {"search_version": 2}, "$unset": {"keywords": ""}}
    await catalog.tracks.update_one({"track_id": "trk3"}, older)
    await catalog.ensure_indexes()  # an older catalog gets its words and sort texts
    assert "c#" in ((await catalog.get_track("alice", "trk3")) or {}).get("keywords", [])
    again = await catalog.get_track("alice", "trk2")
    assert again is not None
    assert again["sort_text"] == {"filename": "calm-waves.wav"}
    assert again["keywords"] == [
        *["calm", "waves", "wav", "ambient", "=calm", "=waves"],
        *["~ambient:0.4", "~ambient:0.1", "~calm:0.4", "~calm:0.1"],
    ]


async def test_cursor_pages_cover_every_track_once(catalog: Catalog) -> None:
    times = [5.0, 5.0, 5.0, 4.0, 3.0, 3.0, 2.0]  # ties on created_at are ordered by track_id
    for n, at in enumerate(times):
        await _track(catalog, n, f"t{n}.wav", at, {})
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await catalog.list_tracks(
            "alice", SearchFilters(), words=[], status=None, cursor=cursor, limit=2
        )
        seen += [doc["track_id"] for doc in page]
        if cursor is None:
            break
    assert seen == ["trk2", "trk1", "trk0", "trk3", "trk5", "trk4", "trk6"]


async def test_pages_read_in_slices_match_a_plain_sort(catalog: Catalog) -> None:
    """Listing reads created_at slices back from now (Catalog._newest_first): dense, sparse and
    tied upload times, a filter, and every cursor page equal the server's plain sorted query."""
    now = time.time()
    ages = [0.2, 0.2, 0.5, 3, 3, 3, 40, 41, 900, 5_000, 86_400, 86_400, 3e6, 3e6, 1e8, now - 7]
    for n, age in enumerate(ages):
        await _track(catalog, n, f"t{n}.wav", now - age, {"mood": ["calm"] if n % 3 else []})
    expected = [
        doc["track_id"]
        async for doc in catalog.tracks.find({"tenant": "alice", "keywords": "calm"}).sort(
            [("created_at", -1), ("track_id", -1)]
        )
    ]
    for limit in (1, 2, 3, 5, 100):
        seen: list[str] = []
        cursor = None
        while True:
            page, cursor = await catalog.list_tracks(
                "alice", SearchFilters(), words=["calm"], status=None, cursor=cursor, limit=limit
            )
            seen += [doc["track_id"] for doc in page]
            if cursor is None:
                break
        assert seen == expected, limit


async def test_the_repair_sweep_finds_unfinished_tracks_by_status(catalog: Catalog) -> None:
    """unfinished_tracks looks statuses up in the (status, created_at) index; every status short
    of an end counts, a missing one too, and only tracks quiet since the given time."""
    statuses = [None, "uploaded", "decode", "embedding", "indexed", "failed", "features"]
    for n, status in enumerate(statuses):
        await _track(catalog, n, f"r{n}.wav", 100.0 - n, {})
        if status is not None:
            await catalog.tracks.update_one({"track_id": f"trk{n}"}, {"$set": {"status": status}})
    await catalog.tracks.update_one({"track_id": "trk6"}, {"$set": {"status_at": 500.0}})
    found = await catalog.unfinished_tracks(quiet_since=200.0, limit=10)
    assert [doc["track_id"] for doc in found] == ["trk3", "trk2", "trk1", "trk0"]  # oldest first
    assert [doc["track_id"] for doc in await catalog.unfinished_tracks(200.0, 2)] == [
        "trk3",
        "trk2",
    ]
    assert await catalog.unfinished_tracks(quiet_since=90.0, limit=10) == []
