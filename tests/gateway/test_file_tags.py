"""A tagged file with cover art, through the whole pipeline: its tags appear on the track and in
the list, its words find it, its cover is served to its owner only."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec
from PIL import Image

from schemas.api import TrackPage
from tests.encode import encode, tone
from tests.gateway.conftest import Gateway
from tests.gateway.test_tracks import upload, wait_indexed


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_tags_cover_and_keyword_search(gateway: Gateway, tmp_path: Path) -> None:
    _, owner = await gateway.new_user("tagged")
    _, stranger = await gateway.new_user("stranger")
    cover = _png()
    tags = {
        "title": "Vapour Trails",
        "artist": "Quill Ensemble",
        "album": "Northbound",
        "date": "1998",
    }
    song = encode(tmp_path / "song.mp3", tone(4.0, 44100), 44100, "mp3", tags=tags, cover=cover)

    accepted = await upload(gateway, owner, song)
    track = await wait_indexed(gateway, owner, accepted.track_id)

    assert track.status == "indexed"
    file_tags = (track.audio or {})["metadata"]
    assert (file_tags["title"], file_tags["artist"], file_tags["album"]) == (
        "Vapour Trails",
        "Quill Ensemble",
        "Northbound",
    )
    assert file_tags["year"] == 1998
    assert track.features is not None
    assert track.features["replaygain_db"] == round(-18.0 - track.features["loudness_lufs"], 2)

    cover_url = f"/v1/tracks/{accepted.track_id}/cover"
    response = await gateway.client.get(cover_url, headers=owner)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == cover
    assert (await gateway.client.get(cover_url, headers=stranger)).status_code == 404

    listing = await gateway.client.get("/v1/tracks", params={"q": "quill"}, headers=owner)
    page = msgspec.json.decode(listing.content, type=TrackPage)
    assert [(t.track_id, t.artist, t.title) for t in page.items] == [
        (accepted.track_id, "Quill Ensemble", "Vapour Trails")
    ]
    others = await gateway.client.get("/v1/tracks", params={"q": "quill"}, headers=stranger)
    assert msgspec.json.decode(others.content, type=TrackPage).items == []


async def test_a_file_without_cover_art_answers_404(gateway: Gateway, tmp_path: Path) -> None:
    _, owner = await gateway.new_user("plain")
    song = encode(tmp_path / "plain.flac", tone(3.0, 44100, freq=523.0), 44100, "flac")
    accepted = await upload(gateway, owner, song)
    await wait_indexed(gateway, owner, accepted.track_id)

    response = await gateway.client.get(f"/v1/tracks/{accepted.track_id}/cover", headers=owner)

    assert response.status_code == 404
    assert "no cover art" in response.json()["detail"]
