"""Fault loops (`--sections faults`): real processes killed, real servers stopped, and the tally
every loop reports: tracks ingested (accepted uploads), faults injected, lost, duplicated, stuck.

- crash loop: `tonestream up` (its own process group: gateway, stages, nats-server, catalog
  server, pool) is killed with SIGKILL at random moments while tracks are uploaded over HTTP,
  then started again on the same data directory, each time;
- store outage: the catalog server (started apart, `TONESTREAM_MONGO_URL`) is stopped mid-ingest
  for `outage_s`, then started again on the same data and port.
At the end every accepted upload must be indexed exactly once (one `indexed` event, one vector
point, one catalog entry) with status `indexed`: lost = accepted but not indexed, duplicated =
more than one of any, stuck = status other than `indexed` once the system is quiet.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import nats

from cli.credentials import load_credentials
from schemas.events import Indexed
from schemas.settings import settings_from_env
from stores.embedded_mongo import EmbeddedMongo, start_embedded_mongo
from stores.vectors import VectorIndex
from streams.server import free_port
from tests.integration.kit import audio_events
from tests.synth import write_track

# Shorter retry clocks than production, so a loop ends in minutes; the semantics are the same.
FAULT_ENV = {
    "TONESTREAM_WORKERS": "2",
    "TONESTREAM_CLIP_ENABLED": "false",
    "TONESTREAM_BACKOFF_S": "[5, 10, 20, 30, 60]",
    "TONESTREAM_MAX_DELIVER": "8",
    "TONESTREAM_REPAIR_INTERVAL_S": "5",
    "TONESTREAM_REPAIR_GRACE_S": "20",
    "TONESTREAM_LOG_FORMAT": "json",
}
BANNER = re.compile(r"Tonestream is running at (\S+)")
NATS_LINE = re.compile(r"NATS\s+(nats://\S+)")


def make_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` different short tracks (different seeds and tempi: different bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_track(
            folder / f"t{i:04d}.wav",
            bpm=70.0 + (i * 7) % 100,
            key="A",
            mode="minor",
            seconds=seconds,
            seed=i,
        )
        for i in range(count)
    ]


class Up:
    """`tonestream up` as a process group of its own, on a fixed data dir and port."""

    def __init__(self, data: Path, port: int, env: dict[str, str]) -> None:
        self.data, self.port, self.env = data, port, env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = self.nats_url = ""

    async def start(self, timeout_s: float = 120.0) -> None:
        log = self.data.parent / "up.log"
        offset = log.stat().st_size if log.exists() else 0
        self.process = self._spawn(log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = log.read_bytes()[offset:].decode(errors="replace")
            url, nats_url = BANNER.search(text), NATS_LINE.search(text)
            if url and nats_url:
                self.url, self.nats_url = url.group(1), nats_url.group(1)
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"tonestream up exited: {text[-2000:]}")
            await asyncio.sleep(0.2)
        raise RuntimeError("tonestream up did not start in time")

    def _spawn(self, log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up", "--port", str(self.port)],
                env={**os.environ, **self.env, "TONESTREAM_DATA_DIR": str(self.data)},
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    async def kill(self) -> None:
        """SIGKILL to the whole process group, as a power cut of the box would."""
        self._signal(signal.SIGKILL)
        await asyncio.to_thread(self._wait)

    async def stop(self) -> None:
        """SIGTERM to `up` alone (as Ctrl-C would): it stops its children in order."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self._wait)

    def _wait(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=120)
        # every child shares the group: wait until none is left (they die with their parent)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


async def upload_until_done(up: Up, files: Sequence[Path], accepted: dict[Path, str]) -> None:
    """Upload every file not yet accepted, one at a time; errors are retried (a real client)."""
    creds = load_credentials(up.data)
    assert creds is not None
    headers = {"X-API-Key": creds.api_key}
    async with httpx.AsyncClient(base_url=up.url, timeout=60) as http:
        for path in files:
            while path not in accepted:
                try:
                    response = await http.post(
                        "/v1/tracks",
                        content=await asyncio.to_thread(path.read_bytes),
                        headers=headers | {"X-Filename": path.name},
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.5)
                    continue
                if response.status_code in (200, 202):
                    accepted[path] = response.json()["track_id"]
                else:
                    await asyncio.sleep(0.5)


async def _statuses(up: Up) -> dict[str, str]:
    creds = load_credentials(up.data)
    assert creds is not None
    items: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 500}
    async with httpx.AsyncClient(base_url=up.url, timeout=60) as http:
        while True:
            response = await http.get(
                "/v1/tracks", params=params, headers={"X-API-Key": creds.api_key}
            )
            response.raise_for_status()
            page = response.json()
            items += page["items"]
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    statuses: dict[str, str] = {}
    for item in items:
        track_id = item["track_id"]
        statuses[track_id] = "duplicate" if track_id in statuses else item["status"]
    return statuses


async def settle(up: Up, ids: set[str], timeout_s: float) -> float:
    """Wait until every id is indexed (or the time is up); returns the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        statuses = await _statuses(up)
        if all(statuses.get(i) == "indexed" for i in ids):
            break
        await asyncio.sleep(2)
    return round(time.monotonic() - began, 1)


async def _tenant(up: Up) -> str:
    creds = load_credentials(up.data)
    assert creds is not None
    async with httpx.AsyncClient(base_url=up.url, timeout=60) as http:
        response = await http.get("/v1/auth/me", headers={"X-API-Key": creds.api_key})
        response.raise_for_status()
        tenant: str = response.json()["user_id"]
    return tenant


async def tally(up: Up, accepted: dict[Path, str], faults: int) -> dict[str, Any]:
    """Count lost, duplicated and stuck tracks; stops `up` to read its vector index."""
    ids = set(accepted.values())
    statuses, tenant = await _statuses(up), await _tenant(up)
    nc = await nats.connect(up.nats_url)
    try:
        indexed: dict[str, int] = {}
        for event in await audio_events(nc, "indexed"):
            if isinstance(event, Indexed):
                indexed[event.track.track_id] = indexed.get(event.track.track_id, 0) + 1
    finally:
        await nc.close()
    await up.stop()
    vectors = await VectorIndex.open(
        settings_from_env({}, data_dir=str(up.data), clip_enabled=False)
    )
    try:
        points = {i for i in ids if await vectors.get(tenant, i) is not None}
    finally:
        await vectors.close()
    lost = sorted(i for i in ids if not indexed.get(i) or i not in points)
    duplicated = sorted(i for i in ids if indexed.get(i, 0) > 1 or statuses.get(i) == "duplicate")
    stuck = sorted(i for i in ids if statuses.get(i) != "indexed")
    return {
        "ingested": len(ids),
        "faults": faults,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stuck": len(stuck),
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "stuck": stuck[:5]},
    }


async def measure_crash_loop(
    work: Path, tracks: int, kills: int, seconds: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    files = make_tracks(work / "crash-tracks", tracks, seconds)
    up = Up(work / "crash" / "var", free_port(), FAULT_ENV)
    accepted: dict[Path, str] = {}
    for _ in range(kills):
        await up.start()
        uploading = asyncio.create_task(upload_until_done(up, files, accepted))
        await asyncio.sleep(rng.uniform(2.0, 12.0))
        await up.kill()
        uploading.cancel()
        await asyncio.gather(uploading, return_exceptions=True)
    await up.start()
    await upload_until_done(up, files, accepted)
    settle_s = await settle(up, set(accepted.values()), timeout_s=900)
    return await tally(up, accepted, kills) | {"settle_s": settle_s, "offered": tracks}


async def measure_store_outage(
    work: Path, tracks: int, outage_s: float, seconds: float
) -> dict[str, Any]:
    files = make_tracks(work / "outage-tracks", tracks, seconds)
    mongo_dir, port = work / "outage" / "mongo", free_port()
    mongo: EmbeddedMongo = await start_embedded_mongo(mongo_dir, port=port)
    env = FAULT_ENV | {"TONESTREAM_MONGO_URL": mongo.uri}
    up = Up(work / "outage" / "var", free_port(), env)
    accepted: dict[Path, str] = {}
    try:
        await up.start()
        half = len(files) // 2
        await upload_until_done(up, files[:half], accepted)
        await mongo.stop()
        await asyncio.sleep(outage_s)
        mongo = await start_embedded_mongo(mongo_dir, port=port)
        await upload_until_done(up, files, accepted)
        settle_s = await settle(up, set(accepted.values()), timeout_s=900)
        result = await tally(up, accepted, 1)
    finally:
        await mongo.stop()
    return result | {"settle_s": settle_s, "outage_s": outage_s}
