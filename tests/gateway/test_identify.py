"""Fingerprints through the real stack (nats-server, SecantusDB, Qdrant Edge, blob folder, every
stage, the gateway): clips identified at their offset over HTTP and the CLI's route, music not in
the library and other users' tracks not matched, bad clips refused with a reason, one recording
in three files found as one duplicate group, delete removing fingerprints, replay rebuilding."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from schemas.api import DuplicateGroups, IdentifyResult, Track, TrackPage
from streams.names import AUDIO_STREAM, Stage, consumer_name
from tests.encode import encode
from tests.gateway.conftest import Gateway, Headers
from tests.gateway.test_tracks import upload
from tests.integration.kit import wait_until
from tests.medley import Encoding, render_medley, with_noise

RATE = 22050
SECONDS = 24.0
CLIP_S = 10.0


@dataclass
class Library:
    headers: Headers
    audio: dict[str, np.ndarray]  # track id → the recording as uploaded


async def fingerprinted(gateway: Gateway, headers: Headers, track_id: str) -> Track:
    async def done() -> bool:
        response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)
        stage = response.json().get("stages", {}).get(str(Stage.FINGERPRINT)) or {}
        return stage.get("state") in ("finished", "failed") or response.json()["status"] == (
            "failed"
        )

    await wait_until(done, what=f"track {track_id} to be fingerprinted")
    response = await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)
    track = msgspec.json.decode(response.content, type=Track)
    assert track.stages[str(Stage.FINGERPRINT)].state == "finished", track
    return track


def _write(path: Path, audio: np.ndarray, kind: str = "flac", bit_rate: int | None = None) -> Path:
    if kind == "flac":
        sf.write(path, audio, RATE, format="FLAC")
        return path
    return encode(path, audio[None, :], RATE, kind, bit_rate=bit_rate)


async def identify(gateway: Gateway, headers: Headers, data: bytes, **kw: str) -> IdentifyResult:
    response = await gateway.client.post(
        "/v1/identify", content=data, headers=headers | {"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=IdentifyResult)


@pytest.fixture(scope="module")
async def library(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Library:
    _, headers = await gateway.new_user("dj")
    folder = tmp_path_factory.mktemp("library")
    audio: dict[str, np.ndarray] = {}
    for seed in (11, 12):
        recording = render_medley(seed, SECONDS, RATE)
        path = await asyncio.to_thread(_write, folder / f"song-{seed}.flac", recording)
        accepted = await upload(gateway, headers, path)
        audio[accepted.track_id] = recording
    for track_id in audio:
        await fingerprinted(gateway, headers, track_id)
    return Library(headers, audio)


@pytest.mark.parametrize(
    "encoding", [Encoding("mp3", 64_000, 44_100), Encoding("opus", 48_000, 48_000)], ids=str
)
async def test_noisy_reencoded_clips_are_identified_at_their_offset(
    gateway: Gateway, library: Library, tmp_path: Path, encoding: Encoding
) -> None:
    rng = np.random.default_rng([encoding.bit_rate, 7])
    for track_id, recording in library.audio.items():
        start = float(rng.uniform(0.0, SECONDS - CLIP_S))
        piece = recording[round(start * RATE) : round((start + CLIP_S) * RATE)]
        noisy = with_noise(piece, 10.0, rng)
        rate = encoding.rate
        g = gcd(rate, RATE)
        resampled = signal.resample_poly(noisy, rate // g, RATE // g).astype(np.float32)
        resampled /= max(1.0, float(np.max(np.abs(resampled))) / 0.99)
        path = await asyncio.to_thread(
            encode,
            tmp_path / f"clip.{encoding.kind}",
            resampled[None, :],
            rate,
            encoding.kind,
            bit_rate=encoding.bit_rate,
        )
        result = await identify(gateway, library.headers, path.read_bytes())
        assert result.matched, f"{track_id} from {start:.2f} s not found"
        best = result.matches[0]
        assert best.track_id == track_id
        assert abs(best.offset_s - start) <= 0.1, (best.offset_s, start)
        assert 0.0 < best.confidence <= 1.0
        assert best.filename.startswith("song-")


async def test_music_not_in_the_library_and_other_users_tracks_are_no_match(
    gateway: Gateway, library: Library, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    stranger = with_noise(render_medley(901, CLIP_S, RATE), 10.0, rng)
    path = await asyncio.to_thread(_write, tmp_path / "stranger.flac", stranger)
    assert await identify(gateway, library.headers, path.read_bytes()) == IdentifyResult(
        matched=False
    )

    track_id, recording = next(iter(library.audio.items()))
    clip = await asyncio.to_thread(_write, tmp_path / "clip.flac", recording[: int(CLIP_S) * RATE])
    assert (await identify(gateway, library.headers, clip.read_bytes())).matches[0].track_id == (
        track_id
    )
    _, other = await gateway.new_user("other")
    assert not (await identify(gateway, other, clip.read_bytes())).matched
    multipart = await gateway.client.post(
        "/v1/identify", files={"file": ("clip.flac", clip.read_bytes())}, headers=library.headers
    )
    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["matches"][0]["track_id"] == track_id
    anonymous = await gateway.client.post("/v1/identify", content=clip.read_bytes())
    assert anonymous.status_code == 401


async def test_bad_clips_are_refused_with_a_reason(
    gateway: Gateway, library: Library, tmp_path: Path
) -> None:
    headers = library.headers | {"Content-Type": "application/octet-stream"}
    empty = await gateway.client.post("/v1/identify", content=b"", headers=headers)
    assert empty.status_code == 400, empty.text
    text = await gateway.client.post("/v1/identify", content=b"hello " * 100, headers=headers)
    assert text.status_code == 415, text.text
    too_long_s = gateway.settings.identify_max_s + 5
    silence = np.zeros(int(too_long_s * 8000), dtype=np.float32)
    long_path = tmp_path / "long.wav"
    await asyncio.to_thread(sf.write, long_path, silence, 8000, subtype="PCM_16")
    long = await gateway.client.post(
        "/v1/identify", content=long_path.read_bytes(), headers=headers
    )
    assert long.status_code == 422, long.text
    assert "long" in long.json()["detail"]


async def test_one_recording_in_three_files_is_one_duplicate_group_until_deleted(
    gateway: Gateway, tmp_path: Path
) -> None:
    user, headers = await gateway.new_user("collector")
    recording = render_medley(31, SECONDS, RATE)
    files = [
        _write(tmp_path / "take.flac", recording),
        _write(tmp_path / "take-128.mp3", recording, "mp3", 128_000),
        _write(tmp_path / "take-trim-64.mp3", recording[3 * RATE : -2 * RATE], "mp3", 64_000),
        _write(tmp_path / "other.flac", render_medley(32, SECONDS, RATE)),
    ]
    ids = [(await upload(gateway, headers, path)).track_id for path in files]
    again = await upload(gateway, headers, files[0])  # exact bytes: today's answer
    assert again.duplicate
    assert again.track_id == ids[0]
    for track_id in ids:
        await fingerprinted(gateway, headers, track_id)
    tracks = [await fingerprinted(gateway, headers, track_id) for track_id in ids]  # all linked
    group = set(ids[:3])
    for track in tracks[:3]:
        assert set(track.duplicates) == group - {track.track_id}, track.duplicates
        assert track.flags == ["duplicate"]
        assert track.status == "indexed"
    assert tracks[3].duplicates == []
    assert tracks[3].flags == []

    listed = await gateway.client.get(f"/v1/tracks/{ids[0]}/duplicates", headers=headers)
    assert listed.status_code == 200, listed.text
    page = msgspec.json.decode(listed.content, type=TrackPage)
    assert {item.track_id for item in page.items} == group - {ids[0]}
    groups = msgspec.json.decode(
        (await gateway.client.get("/v1/duplicates", headers=headers)).content, type=DuplicateGroups
    )
    assert [{t.track_id for t in g} for g in groups.groups] == [group]
    _, stranger = await gateway.new_user("stranger")
    hidden = await gateway.client.get(f"/v1/tracks/{ids[0]}/duplicates", headers=stranger)
    assert hidden.status_code == 404

    # delete: the track's fingerprints leave the index and the others' groups
    store = gateway.worker.fingerprints
    assert store is not None
    tenant = user.user_id
    assert await store.store.count(tenant, ids[1]) > 0
    assert (await gateway.client.delete(f"/v1/tracks/{ids[1]}", headers=headers)).status_code == 204

    async def removed() -> bool:
        if await store.store.count(tenant, ids[1]):
            return False
        first = (await gateway.client.get(f"/v1/tracks/{ids[0]}", headers=headers)).json()
        return bool(first["duplicates"] == [ids[2]])

    await wait_until(removed, timeout_s=30, what="the deleted track's fingerprints to go")

    # replay: a lost index is rebuilt from the log (`indexed` events), nothing re-uploaded
    windows = await store.store.count(tenant, ids[0])
    await store.store.remove(tenant, ids[0])
    assert await store.store.count(tenant, ids[0]) == 0
    admin = await gateway.new_admin()
    replay = await gateway.client.post(
        "/v1/admin/replay", json={"stage": "fingerprint"}, headers=admin
    )
    assert replay.status_code == 200, replay.text

    async def rebuilt() -> bool:
        info = await gateway.nc.jetstream().consumer_info(
            AUDIO_STREAM, consumer_name(Stage.FINGERPRINT)
        )
        idle = (info.num_pending or 0) + (info.num_ack_pending or 0) == 0
        return idle and await store.store.count(tenant, ids[0]) == windows

    await wait_until(rebuilt, timeout_s=60, what="the fingerprint replay to rebuild the index")
    assert await store.store.count(tenant, ids[1]) == 0  # the deleted track stays deleted
    first = (await gateway.client.get(f"/v1/tracks/{ids[0]}", headers=headers)).json()
    assert first["duplicates"] == [ids[2]]
