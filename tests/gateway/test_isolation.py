"""Two users, one gateway: every route given the other user's ids returns nothing of theirs.

User A owns two indexed tracks, user B one. With B's credentials, each of A's ids is simply not
found (404, never 403, and the same answer as for an id that never existed) on every track route,
the per-track WebSocket refuses it, and a search naming it is a 404. B's listings, searches and
per-user progress streams (SSE and WebSocket) only ever carry B's tracks. Each check has a
positive control on B's (or A's) own data, so an empty answer means "isolated", not "broken".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from schemas.api import ProgressMessage, SearchResults, Track, TrackPage, UploadAccepted, User
from tests.gateway.conftest import Gateway, Headers
from tests.integration.kit import wait_until
from tests.synth import write_track

STREAM_WINDOW_S = 60.0  # how long the per-user streams may take to show B's new track


@dataclass
class Library:
    """One user and the tracks they uploaded (id → file)."""

    user: User
    headers: Headers
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return set(self.files)

    @property
    def token(self) -> str:
        return self.headers["Authorization"].removeprefix("Bearer ")


@dataclass
class World:
    a: Library
    b: Library
    tracks: dict[str, Track]  # every track of both users, as its owner sees it once indexed
    folder: Path


async def upload(gateway: Gateway, owner: Library, path: Path) -> str:
    response = await gateway.client.post(
        "/v1/tracks",
        content=await asyncio.to_thread(path.read_bytes),
        headers=owner.headers | {"X-Filename": path.name, "Content-Type": "audio/wav"},
    )
    assert response.status_code == 202, response.text
    track_id = msgspec.json.decode(response.content, type=UploadAccepted).track_id
    owner.files[track_id] = path
    return track_id


async def wait_indexed(gateway: Gateway, owner: Library, track_id: str) -> Track:
    async def done() -> bool:
        response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=owner.headers)
        assert response.status_code == 200, response.text
        return response.json()["status"] in ("indexed", "failed")

    await wait_until(done, timeout_s=180, what=f"track {track_id} to be indexed")
    response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=owner.headers)
    track = msgspec.json.decode(response.content, type=Track)
    assert track.status == "indexed", track
    return track


@pytest.fixture(scope="module")
async def world(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("isolation")
    user_a, headers_a = await gateway.new_user("alice")
    user_b, headers_b = await gateway.new_user("bob")
    a, b = Library(user_a, headers_a), Library(user_b, headers_b)
    songs = [
        (a, write_track(folder / "amber harbour.wav", bpm=100, key="D", mode="minor", seconds=16)),
        (
            a,
            write_track(
                folder / "cobalt meridian.wav", bpm=132, key="A", mode="major", seconds=16, seed=3
            ),
        ),
        (b, write_track(folder / "lantern.wav", bpm=84, key="F", mode="major", seconds=16, seed=5)),
    ]
    uploaded = [(owner, await upload(gateway, owner, path)) for owner, path in songs]
    tracks = {
        track_id: await wait_indexed(gateway, owner, track_id) for owner, track_id in uploaded
    }
    return World(a=a, b=b, tracks=tracks, folder=folder)


def _detail_pattern(response: httpx.Response, track_id: str) -> tuple[int, str]:
    """A 404's status and detail with the asked-for id masked: the same for any unknown id.
    (Any other answer — a track, audio, events — is described, so a leak reads plainly.)"""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and set(body) == {"status_code", "detail"}:
        detail = str(body["detail"])
    else:
        detail = f"{response.headers.get('content-type')}: {response.content[:200]!r}"
    return response.status_code, detail.replace(track_id, "<id>")


async def _track_routes(
    gateway: Gateway, headers: Headers, track_id: str
) -> dict[str, tuple[int, str]]:
    """What every read route answers for `track_id` (the event stream is bounded in time)."""
    base = f"/v1/tracks/{track_id}"
    answers: dict[str, tuple[int, str]] = {}
    for name, path, extra in [
        ("get", base, {}),
        ("audio", f"{base}/audio", {}),
        ("audio range", f"{base}/audio", {"Range": "bytes=0-99"}),
        ("audio suffix", f"{base}/audio", {"Range": "bytes=-5"}),
        ("similar", f"{base}/similar", {}),
        ("similar filtered", f"{base}/similar?k=5&tempo_min=0&duration_min=1", {}),
    ]:
        response = await gateway.client.get(path, headers=headers | extra)
        answers[name] = _detail_pattern(response, track_id)
    async with asyncio.timeout(20):
        stream = gateway.client.stream("GET", f"{base}/events", headers=headers)
        async with stream as response:
            await response.aread()
            answers["events"] = _detail_pattern(response, track_id)
    return answers


async def test_track_routes_say_404_for_the_other_users_ids(gateway: Gateway, world: World) -> None:
    a, b = world.a, world.b
    never_existed = uuid.uuid4().hex
    unknown = await _track_routes(gateway, b.headers, never_existed)
    assert {answer[0] for answer in unknown.values()} == {404}, unknown

    for track_id in sorted(a.ids):
        assert await _track_routes(gateway, b.headers, track_id) == unknown, track_id
        deleted = await gateway.client.delete(f"/v1/tracks/{track_id}", headers=b.headers)
        assert deleted.status_code == 404, deleted.text
        assert _detail_pattern(deleted, track_id) == unknown["get"]

    # B's failed deletes touched nothing of A's: catalog, blobs and vectors are all still there.
    worker = gateway.worker
    assert worker.vectors is not None
    for track_id, path in a.files.items():
        own = await gateway.client.get(f"/v1/tracks/{track_id}", headers=a.headers)
        assert own.status_code == 200, own.text
        assert own.json()["status"] == "indexed"
        audio = await gateway.client.get(f"/v1/tracks/{track_id}/audio", headers=a.headers)
        assert audio.status_code == 200
        assert audio.content == await asyncio.to_thread(path.read_bytes)
        assert await worker.vectors.get(a.user.user_id, track_id) is not None
        similar = await gateway.client.get(f"/v1/tracks/{track_id}/similar", headers=a.headers)
        assert similar.status_code == 200, similar.text
        found = msgspec.json.decode(similar.content, type=SearchResults)
        assert [hit.track_id for hit in found.results] == sorted(a.ids - {track_id})


def _socket_url(gateway: Gateway, token: str, track_id: str | None = None) -> str:
    query = f"access_token={token}" + (f"&track_id={track_id}" if track_id else "")
    return f"{gateway.url.replace('http', 'ws', 1)}/v1/ws/progress?{query}"


async def _socket_refusal(url: str) -> str:
    """How the socket was refused — "HTTP <status>" at the handshake or "close <code>" before any
    frame — and a failure if a frame arrives."""
    try:
        async with asyncio.timeout(20), connect(url) as socket:
            frame = await socket.recv()
    except InvalidStatus as refused:
        return f"HTTP {refused.response.status_code}"
    except ConnectionClosed as closed:
        return f"close {closed.rcvd.code if closed.rcvd else None}"
    pytest.fail(f"the socket was opened and sent {frame!r}")


async def test_progress_socket_refuses_the_other_users_track(
    gateway: Gateway, world: World
) -> None:
    a, b = world.a, world.b
    unknown = await _socket_refusal(_socket_url(gateway, b.token, uuid.uuid4().hex))
    for track_id in sorted(a.ids):
        assert await _socket_refusal(_socket_url(gateway, b.token, track_id)) == unknown

    # Positive control: B's own track streams its history over the same socket, then closes.
    (own,) = b.ids
    messages: list[ProgressMessage] = []
    async with asyncio.timeout(30), connect(_socket_url(gateway, b.token, own)) as socket:
        with contextlib.suppress(ConnectionClosed):
            while True:
                messages.append(msgspec.json.decode(await socket.recv(), type=ProgressMessage))
    assert messages, "B's own track sent nothing over the socket"
    assert messages[-1].final, messages
    assert {m.event.track_id for m in messages} == {own}


async def test_search_naming_the_other_users_track_is_404(gateway: Gateway, world: World) -> None:
    a, b = world.a, world.b
    (own,) = b.ids
    for track_id in sorted(a.ids):
        for body in (
            {"track_ids": [track_id]},
            {"track_ids": [own, track_id]},
            {"track_ids": [track_id], "text": "music"},
        ):
            response = await gateway.client.post("/v1/search", json=body, headers=b.headers)
            assert response.status_code == 404, (body, response.text)
            assert track_id in response.json()["detail"]


async def _list(gateway: Gateway, headers: Headers, **params: object) -> list[str]:
    response = await gateway.client.get("/v1/tracks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item.track_id for item in msgspec.json.decode(response.content, type=TrackPage).items]


async def test_listing_shows_only_the_callers_tracks(gateway: Gateway, world: World) -> None:
    a, b = world.a, world.b
    (own,) = b.ids
    assert set(await _list(gateway, b.headers)) == b.ids
    assert set(await _list(gateway, a.headers)) == a.ids  # A's view, the control

    mine = _features(world.tracks[own])
    for params in (
        {"limit": 500},
        {"status": "indexed"},
        {"tempo_min": 0, "tempo_max": 1000, "duration_min": 0, "duration_max": 1000},
        {"key": mine["key"], "mode": mine["mode"]},
        {"q": "lantern"},
    ):
        assert await _list(gateway, b.headers, **params) == [own], params

    # Filters and words that find one of A's tracks for A never find it for B.
    for track_id in sorted(a.ids):
        theirs = _features(world.tracks[track_id])
        tempo = theirs["tempo_bpm"]
        for params in (
            {"tempo_min": tempo - 0.5, "tempo_max": tempo + 0.5},
            {"key": theirs["key"], "mode": theirs["mode"]},
            {"q": world.tracks[track_id].filename.split()[0]},
        ):
            assert track_id in await _list(gateway, a.headers, **params), params
            assert set(await _list(gateway, b.headers, **params)) <= {own}, params


def _features(track: Track) -> dict[str, Any]:
    assert track.features is not None, track
    return track.features


async def _search(gateway: Gateway, headers: Headers, body: dict[str, object]) -> SearchResults:
    response = await gateway.client.post("/v1/search", json=body, headers=headers)
    assert response.status_code == 200, (body, response.text)
    return msgspec.json.decode(response.content, type=SearchResults)


def _tag_words(track: Track) -> str:
    assert track.tags is not None, track
    return " ".join([*track.tags.get("genre", []), *track.tags.get("mood", [])])


async def test_searches_never_return_the_other_users_tracks(gateway: Gateway, world: World) -> None:
    a, b = world.a, world.b
    (own,) = b.ids

    # B has no other track, so "more like this" is empty — A's two tracks sit in the same index
    # and would be the nearest neighbours if the tenant filter leaked.
    similar = await gateway.client.get(f"/v1/tracks/{own}/similar?k=50", headers=b.headers)
    assert similar.status_code == 200, similar.text
    assert msgspec.json.decode(similar.content, type=SearchResults).results == []
    assert (await _search(gateway, b.headers, {"track_ids": [own], "k": 50})).results == []

    # An audio example made of A's very bytes finds B's track, the only one B can see.
    for track_id, path in a.files.items():
        example = base64.b64encode(await asyncio.to_thread(path.read_bytes)).decode()
        found = await _search(gateway, b.headers, {"audio_base64": example, "k": 50})
        assert [hit.track_id for hit in found.results] == [own], track_id

    # Text made of A's tags and file names never finds A's tracks for B; B's own tags do find
    # B's track, and A's tags find A's tracks for A (the controls).
    for track_id in a.ids:
        words = f"{_tag_words(world.tracks[track_id])} amber harbour cobalt meridian"
        for_b = await _search(gateway, b.headers, {"text": words, "k": 50})
        assert {hit.track_id for hit in for_b.results} <= b.ids, (words, for_b)
        for_a = await _search(gateway, a.headers, {"text": words, "k": 50})
        assert track_id in {hit.track_id for hit in for_a.results}, (words, for_a)
    mine = await _search(gateway, b.headers, {"text": _tag_words(world.tracks[own]), "k": 50})
    assert [hit.track_id for hit in mine.results] == [own]


@dataclass
class _Heard:
    """Progress messages one per-user stream delivered; `ready` once it is subscribed."""

    messages: list[ProgressMessage] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def track_ids(self) -> set[str]:
        return {message.event.track_id for message in self.messages}

    def finished(self, track_id: str) -> bool:
        return any(
            m.event.track_id == track_id
            and m.event.stage == "indexing"
            and m.event.state == "finished"
            for m in self.messages
        )


async def _listen_sse(gateway: Gateway, headers: Headers, heard: _Heard) -> None:
    async with gateway.client.stream("GET", "/v1/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith(":"):  # a keep-alive comment: the subscription exists
                heard.ready.set()
            elif line.startswith("data:"):
                heard.messages.append(msgspec.json.decode(line[5:].strip(), type=ProgressMessage))


async def _listen_socket(socket: ClientConnection, heard: _Heard) -> None:
    heard.ready.set()
    async for frame in socket:
        heard.messages.append(msgspec.json.decode(frame, type=ProgressMessage))


@contextlib.asynccontextmanager
async def _listening(gateway: Gateway, b: Library) -> AsyncIterator[tuple[_Heard, _Heard]]:
    sse, ws = _Heard(), _Heard()
    async with connect(_socket_url(gateway, b.token)) as socket:
        tasks = [
            asyncio.create_task(_listen_sse(gateway, b.headers, sse)),
            asyncio.create_task(_listen_socket(socket, ws)),
        ]
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(sse.ready.wait(), ws.ready.wait())
            await asyncio.sleep(1.0)  # the socket subscribes just after its handshake
            yield sse, ws
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_per_user_streams_never_carry_the_other_users_progress(
    gateway: Gateway, world: World
) -> None:
    a, b = world.a, world.b
    a_song = write_track(world.folder / "a-late.wav", bpm=110, key="E", mode="minor", seconds=8)
    b_song = write_track(
        world.folder / "b-late.wav", bpm=76, key="G", mode="major", seconds=8, seed=9
    )
    async with _listening(gateway, b) as (sse, ws):
        a_new = await upload(gateway, a, a_song)
        b_new = await upload(gateway, b, b_song)
        await wait_indexed(gateway, a, a_new)
        await wait_indexed(gateway, b, b_new)
        # The control: both of B's streams saw B's new track to its end…
        await wait_until(
            lambda: sse.finished(b_new) and ws.finished(b_new),
            timeout_s=STREAM_WINDOW_S,
            what="B's streams to show B's new track finish indexing",
        )
        await asyncio.sleep(2.0)  # …and A's track, indexed before it, had every chance to leak
    for heard in (sse, ws):
        assert heard.track_ids() == {b_new}, heard.messages
        assert {m.event.tenant for m in heard.messages} == {b.user.user_id}
