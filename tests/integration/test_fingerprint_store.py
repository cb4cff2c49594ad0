"""The fingerprint index's two backends, one behaviour: Qdrant Edge in its owning process (the
embedded default) and a Qdrant server through qdrant-client (production).

The server backend runs against `TONESTREAM_TEST_QDRANT_URL` when one is given; without it the
same adapter talks to qdrant-client's in-process implementation of the server API (`:memory:`),
so its requests and results are exercised end to end, as tests/integration/test_vectors.py does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models

from handlers.fingerprint import core
from schemas.settings import Settings
from stores.fingerprint_store import FingerprintStore, open_fingerprints
from stores.fingerprints import VECTOR, window_points
from stores.fingerprints_server import (
    ServerFingerprints,
    collection_name,
    sparse_query,
    tenant_filter,
    to_points,
)
from tests.medley import render_medley

RATE = 22050

pytestmark = pytest.mark.filterwarnings(
    # qdrant-client's in-process server stand-in keeps no payload indexes and says so
    "ignore:Payload indexes have no effect:UserWarning"
)


@pytest.fixture(scope="module")
def prints() -> list[tuple[core.Hashes, core.Times]]:
    return [core.fingerprint(render_medley(seed, 24.0, RATE), RATE) for seed in (41, 42)]


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FingerprintStore]:
    opened: FingerprintStore
    if request.param == "edge":
        opened = open_fingerprints(Settings(data_dir=str(tmp_path)))
    elif url := os.environ.get("TONESTREAM_TEST_QDRANT_URL"):
        opened = ServerFingerprints.connect(url, "", f"test{uuid.uuid4().hex[:10]}")
    else:
        opened = ServerFingerprints(AsyncQdrantClient(location=":memory:"), "tracks")
    try:
        yield opened
    finally:
        await opened.close()


async def test_tracks_are_found_replaced_isolated_and_removed(
    store: FingerprintStore, prints: list[tuple[core.Hashes, core.Times]]
) -> None:
    (h0, t0), (h1, t1) = prints
    windows = await store.add("alice", "a", h0, t0)
    assert windows == len(window_points("alice", "a", h0, t0)) >= 2
    assert await store.add("alice", "a", h0, t0) == windows  # a replay: still one copy
    await store.add("alice", "b", h1, t1)
    assert await store.count("alice", "a") == windows
    start = round(7.0 / core.FRAME_S)  # a 10-s excerpt from 7 s, as a clip would be
    inside = (t0 >= start) & (t0 < start + round(10.0 / core.FRAME_S))
    found = await store.identify("alice", h0[inside], t0[inside] - start)
    assert [m.track_id for m in found] == ["a"]
    assert abs(found[0].offset_s - 7.0) <= 0.1
    assert await store.identify("bob", h0[inside], t0[inside] - start) == []
    await store.remove("alice", "a")
    assert await store.count("alice", "a") == 0
    assert await store.identify("alice", h0[inside], t0[inside] - start) == []
    assert await store.count("alice") == await store.count("alice", "b") > 0


async def test_the_same_recording_twice_is_a_duplicate_another_is_not(
    store: FingerprintStore, prints: list[tuple[core.Hashes, core.Times]]
) -> None:
    (h0, t0), (h1, t1) = prints
    for track_id, (h, t) in {"orig": (h0, t0), "copy": (h0, t0), "other": (h1, t1)}.items():
        await store.add("alice", track_id, h, t)
    assert await store.duplicates("alice", "orig", h0, t0) == ["copy"]
    assert await store.duplicates("alice", "other", h1, t1) == []
    assert await store.duplicates("alice", "orig", h0[:0], t0[:0]) == []


def test_server_requests_are_built_from_the_shared_layout(
    prints: list[tuple[core.Hashes, core.Times]],
) -> None:
    h, t = prints[0]
    windows = window_points("alice", "a", h, t)
    points = to_points(windows)
    assert [p.id for p in points] == [w.id for w in windows]
    vector = points[0].vector
    assert isinstance(vector, dict)
    sparse = vector[VECTOR]
    assert isinstance(sparse, models.SparseVector)
    assert sparse.indices == windows[0].indices == sorted(set(sparse.indices))
    assert set(sparse.values) == {1.0}
    assert points[0].payload == windows[0].payload
    assert (
        window_points("alice", "a", h, t)[0].id
        == windows[0].id
        != (window_points("bob", "a", h, t)[0].id)
    )
    both = tenant_filter("alice", "a")
    assert [(c.key, c.match) for c in both.must] == [  # type: ignore[union-attr]
        ("tenant", models.MatchValue(value="alice")),
        ("track_id", models.MatchValue(value="a")),
    ]
    assert len(tenant_filter("alice").must) == 1  # type: ignore[arg-type]
    assert sparse_query([3, 9]) == models.SparseVector(indices=[3, 9], values=[1.0, 1.0])
    assert not collection_name("tracks").startswith("tracks-")  # vector rebuilds drop those
    assert np.all(np.diff(t) >= 0)
