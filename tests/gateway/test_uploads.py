"""Bad uploads get a 4xx with a reason and leave nothing behind: no blob, no catalog document,
no event. Counted before and after, in the real stores."""

from __future__ import annotations

import asyncio
import io
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.gateway.conftest import Gateway, Headers, gateway_settings, running
from tests.integration.kit import audio_events


async def _stored(gateway: Gateway, tenant: str) -> tuple[int, int, int]:
    """(blob files, catalog tracks, audio events) of one tenant."""
    root = gateway.settings.data_path / "blobs" / tenant
    files = sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0
    assert gateway.worker.catalog is not None
    tracks = await gateway.worker.catalog.count_tracks(tenant)
    events = [e for e in await audio_events(gateway.nc) if e.track.tenant == tenant]
    return files, tracks, len(events)


def _spool_files(gateway: Gateway) -> list[Path]:
    folder = gateway.settings.data_path / "tmp" / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(44100 * seconds), dtype=np.float32), 44100, format="WAV")
    return buffer.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x00" * 4000


@pytest.mark.parametrize(
    ("name", "body", "status", "reason"),
    [
        ("empty.wav", b"", 400, "empty file"),
        ("song.mp3", ELF, 415, "not audio: ELF executable"),
        ("notes.flac", b"just some words\n" * 50, 415, "text file"),
        ("cut.wav", _wav(2.0)[:30_000], 422, "truncated WAV"),
    ],
)
async def test_bad_upload_is_refused_and_leaves_nothing(
    gateway: Gateway, name: str, body: bytes, status: int, reason: str
) -> None:
    user, headers = await gateway.new_user()
    for send in (_raw, _multipart):
        response = await send(gateway, headers, name, body)
        assert response.status_code == status, response.text
        assert reason in response.json()["detail"]
    assert await _stored(gateway, user.user_id) == (0, 0, 0)
    assert _spool_files(gateway) == []


async def _raw(gateway: Gateway, headers: Headers, name: str, body: bytes) -> httpx.Response:
    return await gateway.client.post(
        "/v1/tracks", content=body, headers=headers | {"X-Filename": urllib.parse.quote(name)}
    )


async def _multipart(gateway: Gateway, headers: Headers, name: str, body: bytes) -> httpx.Response:
    return await gateway.client.post(
        "/v1/tracks", files={"file": (name, body, "audio/mpeg")}, headers=headers
    )


async def test_over_the_cap_is_413_before_the_body_is_read(tmp_path: Path) -> None:
    """A declared body over the cap is refused from its Content-Length alone; one sent chunked
    is cut off at the cap. Neither leaves anything behind."""
    settings = gateway_settings(tmp_path / "var", max_upload_bytes=100_000)
    async with running(settings) as small:
        user, headers = await small.new_user()
        declared = await _send_headers_only(small, headers, length=10_000_000)
        assert declared.startswith(b"HTTP/1.1 413"), declared[:200]

        async def chunks() -> AsyncIterator[bytes]:
            data = _wav(5.0)
            for start in range(0, len(data), 16_384):
                yield data[start : start + 16_384]

        chunked = await small.client.post("/v1/tracks", content=chunks(), headers=headers)
        assert chunked.status_code == 413, chunked.text
        assert "size limit of 100000 bytes" in chunked.json()["detail"]
        assert await _stored(small, user.user_id) == (0, 0, 0)
        assert _spool_files(small) == []


async def _send_headers_only(gateway: Gateway, headers: Headers, length: int) -> bytes:
    """Send a request that declares `length` body bytes but sends none; return the answer."""
    host, port = gateway.settings.host, gateway.settings.port
    lines = [
        "POST /v1/tracks HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {length}",
        "Content-Type: application/octet-stream",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        "",
    ]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write("\r\n".join(lines).encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), timeout=10)
    finally:
        writer.close()


async def test_hostile_file_names_are_only_labels(gateway: Gateway, tmp_path: Path) -> None:
    _, headers = await gateway.new_user()
    hostile = "../../../../etc/passwd\x00.wav"
    response = await gateway.client.post(
        "/v1/tracks",
        content=_wav(1.0),
        headers=headers | {"X-Filename": urllib.parse.quote(hostile)},
    )
    assert response.status_code == 202, response.text
    track_id = response.json()["track_id"]
    track = (await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)).json()
    assert track["filename"] == "passwd.wav"
    stored = [p for p in (gateway.settings.data_path / "blobs").rglob("*") if track_id in str(p)]
    assert stored
    assert all(".." not in p.parts and "passwd" not in str(p) for p in stored)
