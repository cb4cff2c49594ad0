"""A delete racing the pipeline leaves no orphan point, document or blob, whichever write it
interleaves with (real catalog server, real Qdrant local engine, real blob folder)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import PermanentError
from handlers.indexing.stage import IndexingStage
from schemas.events import Embedded
from schemas.payloads import AUDIO_VECTOR_DIM, DecodedAudio, Tags, TrackRef, Vectors
from schemas.settings import settings_from_env
from stores.blobs import LocalBlobStore
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.names import analysis_blob_key, track_blob_prefix
from tests.factories import make_features

TENANT = "alice"


def _embedded(track_id: str) -> Embedded:
    return Embedded(
        track=TrackRef(track_id=track_id, tenant=TENANT, blob_key=f"{TENANT}/{track_id}/original"),
        audio=DecodedAudio(
            analysis_key="k",
            sample_rate=22050,
            duration_s=200.0,
            source_format="FLAC",
            source_sample_rate=44100,
            source_channels=2,
        ),
        features=make_features(),
        tags=Tags(
            mood=["calm"],
            genre=[],
            energy="low",
            brightness="dark",
            tempo_class="mid",
            description="calm",
        ),
        vectors=Vectors(audio=[1.0] + [0.0] * (AUDIO_VECTOR_DIM - 1)),
        embedding_version=1,
    )


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
async def stores(tmp_path: Path, mongo_server: str) -> AsyncIterator[tuple[Catalog, VectorIndex]]:
    settings = settings_from_env({}, data_dir=str(tmp_path), clip_enabled=False)
    catalog = await Catalog.open(mongo_server, f"races_{uuid.uuid4().hex[:10]}")
    await catalog.ensure_indexes()
    vectors = await VectorIndex.open(settings)
    try:
        yield catalog, vectors
    finally:
        await vectors.close()
        await catalog.close()


async def _gateway_delete(catalog: Catalog, vectors: VectorIndex, track_id: str) -> None:
    """What DELETE /v1/tracks/{id} does, in its order: tombstone first."""
    await catalog.mark_deleted(TENANT, track_id)
    await vectors.delete(TENANT, track_id)
    await catalog.delete_track(TENANT, track_id)


def _after(
    call: Callable[..., Awaitable[Any]], then: Callable[[], Awaitable[None]]
) -> Callable[..., Awaitable[Any]]:
    """`call`, then the racing delete: the delete lands right after that write."""

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = await call(*args, **kwargs)
        await then()
        return result

    return wrapped


@pytest.mark.parametrize("delete_after", ["vector write", "catalog write"])
async def test_a_delete_racing_indexing_leaves_no_orphan(
    stores: tuple[Catalog, VectorIndex],
    blobs: LocalBlobStore,
    delete_after: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog, vectors = stores
    stage = IndexingStage(settings_from_env({}), catalog, vectors, blobs)
    track_id = uuid.uuid4().hex
    await catalog.create_track(TENANT, track_id, {"sha256": track_id, "created_at": 1.0})

    async def delete() -> None:
        await _gateway_delete(catalog, vectors, track_id)

    if delete_after == "vector write":
        monkeypatch.setattr(vectors, "upsert", _after(vectors.upsert, delete))
    else:
        monkeypatch.setattr(catalog, "upsert_track", _after(catalog.upsert_track, delete))
    with pytest.raises(PermanentError, match="deleted"):
        await stage.handle(_embedded(track_id))
    assert await vectors.get(TENANT, track_id) is None
    assert await catalog.get_track(TENANT, track_id) is None


async def test_an_analysis_blob_written_after_the_delete_is_removed(
    stores: tuple[Catalog, VectorIndex], blobs: LocalBlobStore
) -> None:
    """Decode writes its analysis audio after the delete removed the track's blobs; the track
    then reaches indexing, which refuses it and removes what was written late."""
    catalog, vectors = stores
    stage = IndexingStage(settings_from_env({}), catalog, vectors, blobs)
    track_id = uuid.uuid4().hex
    await _gateway_delete(catalog, vectors, track_id)
    await blobs.delete_prefix(track_blob_prefix(TENANT, track_id))
    late = analysis_blob_key(TENANT, track_id)
    await blobs.put_bytes(late, b"fLaC late analysis audio")
    with pytest.raises(PermanentError, match="deleted"):
        await stage.handle(_embedded(track_id))
    assert await vectors.get(TENANT, track_id) is None
    assert not await blobs.exists(late)
