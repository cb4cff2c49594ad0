"""Offline text search through the gateway: tracks with known model tag probabilities, measured
tempo and file tags — written by the real indexing stage into SecantusDB and the vector index —
come back from `/v1/search` in the order their tags say, and filter by instruments and vocals.

Each track's probabilities are chosen so the expected order has no ties; the expected scores
are worked out by hand in the comments (a term scores its best concept, a track the mean)."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import msgspec
import numpy as np
import pytest

from handlers.indexing.stage import IndexingStage
from handlers.tagging.heuristic import heuristic_tags
from schemas.api import SearchResults, TrackPage
from schemas.events import Embedded
from schemas.payloads import AUDIO_VECTOR_DIM, DecodedAudio, FileMetadata, TrackRef, Vectors
from stores.blobs import open_blob_store
from tests.factories import make_features, make_scores
from tests.gateway.conftest import Gateway, Headers

# file name → (tempo BPM, MSD probabilities, MTT probabilities, file tags); every other tag 0.01
LIBRARY: dict[str, tuple[float, dict[str, float], dict[str, float], dict[str, str]]] = {
    "nocturne.flac": (70, {}, {"piano": 0.9, "quiet": 0.7, "soft": 0.6, "classical": 0.5}, {}),
    "etude.flac": (140, {}, {"piano": 0.8, "loud": 0.6, "fast": 0.5}, {}),
    "meadow.flac": (75, {"ambient": 0.6}, {"quiet": 0.75, "soft": 0.7, "slow": 0.6}, {}),
    "lagoon.flac": (85, {"chillout": 0.6}, {"slow": 0.5, "quiet": 0.4}, {}),
    "smoky-room.flac": (100, {"jazz": 0.7, "female vocalists": 0.6}, {"female": 0.5}, {}),
    "bebop.flac": (180, {"jazz": 0.8, "instrumental": 0.7}, {"techno": 0.05}, {}),
    "diva.flac": (115, {"pop": 0.6, "female vocalists": 0.75}, {}, {}),
    "warehouse.flac": (132, {"electronic": 0.6}, {"techno": 0.8, "drums": 0.7}, {}),
    "minimal.flac": (100, {}, {"techno": 0.7}, {}),
    "sprint.flac": (160, {"rock": 0.6}, {"fast": 0.8, "techno": 0.02}, {}),
    "adagio.flac": (95, {}, {"violin": 0.7, "cello": 0.5}, {}),
    "quartet.flac": (105, {}, {"strings": 0.3}, {}),
    "track01.mp3": (
        110,
        {},
        {},
        {
            "artist": "Quill Ensemble",
            "title": "Vapour Trails",
            "album": "Northbound",
            "genre": "Jazz",
        },
    ),
    "quill-demo.wav": (112, {}, {}, {}),
}


def _event(tenant: str, track_id: str, filename: str, vector: list[float]) -> Embedded:
    bpm, msd, mtt, file_tags = LIBRARY[filename]
    features = make_features(tempo_bpm=float(bpm))
    scores = make_scores(msd=msd, mtt=mtt)
    return Embedded(
        track=TrackRef(
            track_id=track_id, tenant=tenant, blob_key=f"{tenant}/{track_id}", filename=filename
        ),
        audio=DecodedAudio(
            analysis_key=f"{tenant}/{track_id}/analysis.flac",
            sample_rate=22050,
            duration_s=features.duration_s,
            source_format="flac",
            source_sample_rate=44100,
            source_channels=2,
            metadata=msgspec.convert(file_tags, FileMetadata),
        ),
        features=features,
        tags=heuristic_tags(features, scores, filename=filename),
        vectors=Vectors(audio=vector),
        embedding_version=2,
    )


@pytest.fixture(scope="module")
async def library(gateway: Gateway) -> tuple[Headers, dict[str, str]]:
    """A user whose library is LIBRARY, written as the indexing stage writes a track."""
    user, headers = await gateway.new_user("words")
    catalog, vectors = gateway.worker.catalog, gateway.worker.vectors
    assert catalog is not None
    assert vectors is not None
    stage = IndexingStage(gateway.settings, catalog, vectors, open_blob_store(gateway.settings))
    rng = np.random.default_rng(10)
    ids: dict[str, str] = {}
    for n, filename in enumerate(LIBRARY):
        track_id = uuid.uuid4().hex
        upload = {
            "filename": filename,
            "sha256": hashlib.sha256(filename.encode()).hexdigest(),
            "created_at": time.time() + n,
            "size_bytes": 1,
        }
        assert await catalog.create_track(user.user_id, track_id, upload) is None
        vector = rng.normal(size=AUDIO_VECTOR_DIM)
        unit = [float(v) for v in vector / np.linalg.norm(vector)]
        await stage.handle(_event(user.user_id, track_id, filename, unit))
        ids[filename] = track_id
    return headers, ids


async def _search(gateway: Gateway, headers: Headers, text: str, **filters: Any) -> SearchResults:
    body = {"text": text, "k": 20, "filters": filters}
    response = await gateway.client.post("/v1/search", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=SearchResults)


def _files(results: SearchResults) -> list[str]:
    return [hit.track.filename for hit in results.results]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # calm = max(quiet, soft, slow), piano: nocturne (.7+.9)/2, etude (.01+.8)/2,
        # meadow (.75+.01)/2, lagoon (.5+.01)/2
        ("calm piano", ["nocturne.flac", "etude.flac", "meadow.flac", "lagoon.flac"]),
        # female vocals, jazz: smoky (.6+.7)/2, track01's file genre Jazz (.01+1)/2,
        # bebop (.01+.8)/2, diva (.75+.01)/2
        (
            "female vocal jazz",
            ["smoky-room.flac", "track01.mp3", "bebop.flac", "diva.flac"],
        ),
        # fast = the measured tempo class (≥ 120 BPM) or the models' "fast": warehouse
        # (1+.8)/2, bebop (1+.05)/2, sprint (1+.02)/2, etude (1+.01)/2, minimal (.01+.7)/2
        (
            "fast techno",
            ["warehouse.flac", "bebop.flac", "sprint.flac", "etude.flac", "minimal.flac"],
        ),
        # peaceful → calm/mellow, downtempo → chill/slow (slow: measured < 90 BPM is 1.0):
        # meadow (.75+1)/2, nocturne (.7+1)/2, lagoon (.5+1)/2
        ("peaceful downtempo", ["meadow.flac", "nocturne.flac", "lagoon.flac"]),
        # orchestral → strings (strings/violin/cello)/classical: adagio .7, nocturne .5,
        # quartet .3
        ("orchestral music", ["adagio.flac", "nocturne.flac", "quartet.flac"]),
        # metadata words: both in track01's artist, one in quill-demo's file name
        ("Quill Ensemble", ["track01.mp3", "quill-demo.wav"]),
    ],
)
async def test_music_words_rank_tracks_by_their_tags(
    gateway: Gateway, library: tuple[Headers, dict[str, str]], text: str, expected: list[str]
) -> None:
    headers, _ = library

    results = await _search(gateway, headers, text)

    assert _files(results) == expected
    scores = [hit.score for hit in results.results]
    assert scores == sorted(scores, reverse=True)
    assert results.text_mode == "keyword"
    assert "music words and metadata" in results.notes[0]


async def test_the_note_says_how_each_word_was_read(
    gateway: Gateway, library: tuple[Headers, dict[str, str]]
) -> None:
    headers, _ = library

    results = await _search(gateway, headers, "mellow strings by quill")

    note = results.notes[0]
    assert "mellow → mellow/soft/chill" in note
    assert "strings → strings" in note
    assert "quill → file name and tags" in note
    assert "by →" not in note  # a stop word is not a term
    assert {"adagio.flac", "track01.mp3", "quill-demo.wav"} <= set(_files(results))


async def test_instrument_and_vocal_filters(
    gateway: Gateway, library: tuple[Headers, dict[str, str]]
) -> None:
    headers, ids = library

    calm = await _search(gateway, headers, "calm")
    pianos = await _search(gateway, headers, "calm", instruments="piano")
    listing = await gateway.client.get(
        "/v1/tracks", params={"vocals": "female vocals", "limit": 50}, headers=headers
    )
    singers = {t.filename for t in msgspec.json.decode(listing.content, type=TrackPage).items}
    similar = await gateway.client.get(
        f"/v1/tracks/{ids['nocturne.flac']}/similar",
        params={"instruments": "piano", "k": 10},
        headers=headers,
    )
    instrumental = await gateway.client.get(
        f"/v1/tracks/{ids['nocturne.flac']}/similar",
        params={"vocals": "instrumental", "k": 10},
        headers=headers,
    )

    assert _files(calm) == ["meadow.flac", "nocturne.flac", "lagoon.flac"]  # .75, .7, .5
    assert _files(pianos) == ["nocturne.flac"]
    assert singers == {"smoky-room.flac", "diva.flac"}
    assert similar.status_code == 200, similar.text
    assert [h["track"]["filename"] for h in similar.json()["results"]] == ["etude.flac"]
    assert [h["track"]["filename"] for h in instrumental.json()["results"]] == ["bebop.flac"]
