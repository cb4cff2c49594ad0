"""A track's life over HTTP: upload → live progress → found by similar and text search → delete
removes it from blobs, catalog and vectors. Plus download with Range, duplicates and listing."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import msgspec
import pytest
import websockets

from schemas.api import ProgressMessage, SearchResults, Track, TrackPage, UploadAccepted
from schemas.events import Deleted
from streams.names import CHAIN_STAGES, PROGRESS_STREAM, Stage
from tests.gateway.conftest import Gateway, Headers
from tests.integration.kit import audio_events, wait_until
from tests.synth import write_track

EXPECTED_ORDER = [(str(stage), state) for stage in Stage for state in ("started", "finished")]
"""Every stage's progress, `percent` events (long work) left out."""


async def upload(gateway: Gateway, headers: Headers, path: Path) -> UploadAccepted:
    data = await asyncio.to_thread(path.read_bytes)
    response = await gateway.client.post(
        "/v1/tracks",
        content=data,
        headers=headers | {"X-Filename": path.name, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code in (200, 202), response.text
    return msgspec.json.decode(response.content, type=UploadAccepted)


async def follow(gateway: Gateway, headers: Headers, link: str) -> list[ProgressMessage]:
    """Every SSE progress message until the stream ends (after the final one)."""
    messages: list[ProgressMessage] = []
    async with gateway.client.stream("GET", link, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                messages.append(msgspec.json.decode(line[5:].strip(), type=ProgressMessage))
    return messages


async def wait_indexed(gateway: Gateway, headers: Headers, track_id: str) -> Track:
    async def indexed() -> bool:
        response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)
        return response.json()["status"] in ("indexed", "failed")

    await wait_until(indexed, what=f"track {track_id} to be indexed")
    response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)
    return msgspec.json.decode(response.content, type=Track)


async def replay_indexing(gateway: Gateway) -> None:
    admin = await gateway.new_admin()
    replay = {"stage": "indexing"}
    assert (await gateway.client.post("/v1/admin/replay", json=replay, headers=admin)).is_success
    await gateway.replayed(Stage.INDEXING)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("songs")
    return [
        write_track(
            folder / "first light.flac",
            format="FLAC",
            bpm=96,
            key="D",
            mode="minor",
            seconds=20,
            seed=1,
        ),
        write_track(folder / "second wind.wav", bpm=128, key="A", mode="major", seconds=20, seed=2),
    ]


async def test_upload_progress_search_and_delete(gateway: Gateway, songs: list[Path]) -> None:
    _, headers = await gateway.new_user()
    first = await upload(gateway, headers, songs[0])
    assert not first.duplicate
    assert first.status == "uploaded"

    messages = await follow(gateway, headers, first.links.events)
    steps = [(m.event.stage, m.event.state) for m in messages if m.event.state != "percent"]
    assert steps == EXPECTED_ORDER, steps
    assert messages[-1].final
    assert not any(m.final for m in messages[:-1])

    second = await upload(gateway, headers, songs[1])
    track = await wait_indexed(gateway, headers, first.track_id)
    await wait_indexed(gateway, headers, second.track_id)
    assert track.features is not None
    assert abs(track.features["tempo_bpm"] - 96) <= 96 * 0.04
    assert (track.features["key"], track.features["mode"]) == ("D", "minor")
    assert {str(stage) for stage in CHAIN_STAGES} <= set(track.stages)

    similar = await gateway.client.get(f"/v1/tracks/{first.track_id}/similar", headers=headers)
    assert similar.status_code == 200, similar.text
    found = msgspec.json.decode(similar.content, type=SearchResults)
    assert [hit.track_id for hit in found.results] == [second.track_id]
    assert found.results[0].matched == ["tracks"]

    assert track.tags is not None
    labels = [
        track.tags[group][0] for group in ("genre", "mood", "instruments") if track.tags[group]
    ]
    assert labels, track.tags
    words = " ".join(labels[:2])
    text = await gateway.client.post("/v1/search", json={"text": words}, headers=headers)
    assert text.status_code == 200, text.text
    by_text = msgspec.json.decode(text.content, type=SearchResults)
    assert by_text.text_mode == "keyword"
    assert by_text.notes
    assert first.track_id in [hit.track_id for hit in by_text.results]

    gone = await gateway.client.delete(f"/v1/tracks/{first.track_id}", headers=headers)
    assert gone.status_code == 204, gone.text
    worker = gateway.worker
    assert worker.catalog is not None
    assert worker.vectors is not None
    user_id = (await gateway.client.get("/v1/auth/me", headers=headers)).json()["user_id"]
    assert await worker.catalog.get_track(user_id, first.track_id) is None
    assert await worker.vectors.get(user_id, first.track_id) is None
    blob_dir = gateway.settings.data_path / "blobs" / user_id / first.track_id
    assert not blob_dir.exists() or not any(blob_dir.iterdir())
    deleted = [e for e in await audio_events(gateway.nc, "deleted") if isinstance(e, Deleted)]
    assert first.track_id in {event.track.track_id for event in deleted}
    missing = await gateway.client.get(f"/v1/tracks/{first.track_id}", headers=headers)
    assert missing.status_code == 404

    await replay_indexing(gateway)  # does not bring it back
    assert await worker.catalog.get_track(user_id, first.track_id) is None
    assert await worker.vectors.get(user_id, first.track_id) is None


async def test_same_bytes_twice_is_the_same_track(gateway: Gateway, songs: list[Path]) -> None:
    _, headers = await gateway.new_user()
    data = songs[1].read_bytes()
    first = await upload(gateway, headers, songs[1])
    files = {"file": ("renamed.wav", data, "audio/wav")}
    again = await gateway.client.post("/v1/tracks", files=files, headers=headers)
    assert again.status_code == 200, again.text
    body = msgspec.json.decode(again.content, type=UploadAccepted)
    assert body.duplicate
    assert body.track_id == first.track_id
    assert body.sha256 == hashlib.sha256(data).hexdigest()


async def test_similar_to_a_track_not_indexed_yet_is_409(
    gateway: Gateway, songs: list[Path]
) -> None:
    """The index reads the track's vector in the search's own request; a track that has none
    yet is a conflict to retry, one that is not the user's a 404."""
    _, headers = await gateway.new_user()
    track = await upload(gateway, headers, songs[0])
    await wait_indexed(gateway, headers, track.track_id)
    user_id = (await gateway.client.get("/v1/auth/me", headers=headers)).json()["user_id"]
    assert gateway.worker.vectors is not None
    await gateway.worker.vectors.delete(user_id, track.track_id)  # as before indexing
    search = {"track_ids": [track.track_id]}
    pending = await gateway.client.post("/v1/search", json=search, headers=headers)
    assert pending.status_code == 409, pending.text
    assert "not indexed yet" in pending.text
    _, stranger = await gateway.new_user()
    assert (
        await gateway.client.post("/v1/search", json=search, headers=stranger)
    ).status_code == 404


async def test_download_with_range(gateway: Gateway, songs: list[Path]) -> None:
    _, headers = await gateway.new_user()
    accepted = await upload(gateway, headers, songs[0])
    data = songs[0].read_bytes()
    whole = await gateway.client.get(accepted.links.audio, headers=headers)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    part = await gateway.client.get(
        accepted.links.audio, headers=headers | {"Range": "bytes=10-99"}
    )
    assert part.status_code == 206
    assert part.content == data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(data)}"
    tail = await gateway.client.get(accepted.links.audio, headers=headers | {"Range": "bytes=-5"})
    assert tail.status_code == 206
    assert tail.content == data[-5:]
    outside = await gateway.client.get(
        accepted.links.audio, headers=headers | {"Range": f"bytes={len(data)}-"}
    )
    assert outside.status_code == 416


async def test_list_filters_and_pages(gateway: Gateway, songs: list[Path]) -> None:
    _, headers = await gateway.new_user()
    ids = [(await upload(gateway, headers, path)).track_id for path in songs]
    for track_id in ids:
        await wait_indexed(gateway, headers, track_id)

    async def listed(**params: object) -> TrackPage:
        response = await gateway.client.get("/v1/tracks", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return msgspec.json.decode(response.content, type=TrackPage)

    assert {t.track_id for t in (await listed()).items} == set(ids)
    assert [t.track_id for t in (await listed(tempo_min=110)).items] == [ids[1]]
    assert [t.track_id for t in (await listed(key="D", mode="minor")).items] == [ids[0]]
    assert [t.track_id for t in (await listed(q="first")).items] == [ids[0]]
    assert (await listed(q="nothing-like-this")).items == []
    page = await listed(limit=1)
    assert len(page.items) == 1
    assert page.next_cursor
    rest = await listed(limit=1, cursor=page.next_cursor)
    assert len(rest.items) == 1
    assert rest.next_cursor is None
    assert {page.items[0].track_id, rest.items[0].track_id} == set(ids)
    sha256 = hashlib.sha256(songs[0].read_bytes()).hexdigest()
    assert [t.track_id for t in (await listed(sha256=sha256)).items] == [ids[0]]
    # a track given as a search input is never its own result, whichever input finds it
    both = {"text": "first light", "track_ids": [ids[0]]}
    mixed = await gateway.client.post("/v1/search", json=both, headers=headers)
    assert mixed.status_code == 200, mixed.text
    assert ids[0] not in [hit["track_id"] for hit in mixed.json()["results"]]
    alone = await gateway.client.post("/v1/search", json={"text": "first"}, headers=headers)
    assert ids[0] in [hit["track_id"] for hit in alone.json()["results"]]
    bad = await gateway.client.get("/v1/tracks", params={"cursor": "%%%"}, headers=headers)
    assert bad.status_code == 400


async def test_websocket_streams_a_tracks_progress(gateway: Gateway, songs: list[Path]) -> None:
    _, headers = await gateway.new_user()
    accepted = await upload(gateway, headers, songs[1])
    token = headers["Authorization"].removeprefix("Bearer ")
    url = gateway.url.replace("http://", "ws://")
    address = f"{url}/v1/ws/progress?track_id={accepted.track_id}&access_token={token}"
    messages: list[ProgressMessage] = []
    async with websockets.connect(address) as socket:
        async for frame in socket:
            messages.append(msgspec.json.decode(frame, type=ProgressMessage))
    steps = [(m.event.stage, m.event.state) for m in messages if m.event.state != "percent"]
    assert steps == EXPECTED_ORDER
    assert messages[-1].final


async def _progress_consumers(gateway: Gateway) -> set[str]:
    infos = await gateway.nc.jetstream().consumers_info(PROGRESS_STREAM)
    return {info.name for info in infos}


async def test_a_client_going_away_ends_its_subscription(gateway: Gateway) -> None:
    """Each live stream is one ephemeral consumer on PROGRESS; it goes when the client does."""
    _, headers = await gateway.new_user()
    before = await _progress_consumers(gateway)
    ours: set[str] = set()
    async with gateway.client.stream("GET", "/v1/events", headers=headers) as response:
        assert response.status_code == 200

        async def opened() -> bool:
            ours.update(await _progress_consumers(gateway) - before)
            return bool(ours)

        await wait_until(opened, timeout_s=10, what="the stream's consumer")

    async def closed() -> bool:
        return not ours & await _progress_consumers(gateway)

    await wait_until(closed, timeout_s=15, what="the stream's consumer to be removed")
