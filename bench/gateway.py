"""Gateway measurements on the embedded stack (`tonestream up` in this process):

- progress latency: a stage publishes `finished` → an SSE client of the gateway receives it;
  both ends stamp wall-clock time on this one machine;
- upload memory: RSS growth of the gateway process while a separate client process streams a
  large file to it (the client's memory is not ours to count).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psutil
import soundfile as sf

from cli.up import running_gateway, running_system
from handlers.worker import Worker
from schemas.api import ProgressMessage, TokenPair
from schemas.settings import settings_from_env
from streams.names import Stage
from streams.server import free_port
from tests.synth import write_track

PASSWORD = "bench password"
_UPLOAD_CLIENT = """
import sys, httpx
url, token, path = sys.argv[1:4]
with open(path, "rb") as body:
    response = httpx.post(url, content=body, timeout=600,
        headers={"Authorization": f"Bearer {token}", "X-Filename": "big.wav"})
print(response.status_code, response.text[:300])
"""


@dataclass
class Client:
    http: httpx.AsyncClient
    token: str
    worker: Worker  # its stores, for benches that fill the catalog directly


@contextlib.asynccontextmanager
async def gateway_stack(data: Path) -> AsyncIterator[Client]:
    """The embedded system with its gateway on a free port, and a logged-in user's client."""
    settings = settings_from_env({}, data_dir=str(data), clip_enabled=False, port=free_port())
    async with (
        running_system(settings) as worker,
        running_gateway(worker) as url,
        httpx.AsyncClient(base_url=url, timeout=600) as http,
    ):
        credentials = {"username": "bench", "password": PASSWORD}
        await http.post("/v1/auth/register", json=credentials)
        login = await http.post("/v1/auth/login", json=credentials)
        login.raise_for_status()
        token = msgspec.json.decode(login.content, type=TokenPair).access_token
        yield Client(http, token, worker)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _finished_latencies(client: Client, count: int, ready: asyncio.Event) -> list[float]:
    """Seconds from each `finished` event's stamp to its arrival over SSE, until `count`."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.http.stream("GET", "/v1/events", headers=headers) as response:
        response.raise_for_status()
        ready.set()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            arrived = time.time()
            message = msgspec.json.decode(line[5:].strip(), type=ProgressMessage)
            if message.event.state == "finished":
                latencies.append(arrived - message.event.at)
                if len(latencies) >= count:
                    return latencies
    return latencies


async def measure_progress_latency(work: Path, tracks: int, seconds: float) -> dict[str, Any]:
    """Upload `tracks` short pieces over HTTP; latency of every stage's `finished` to SSE."""
    folder = work / "progress-tracks"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        write_track(folder / f"p{i}.wav", bpm=90 + 7 * i, key="C", mode="major", seconds=seconds)
        for i in range(tracks)
    ]
    async with gateway_stack(work / "progress-var") as client:
        ready = asyncio.Event()
        expected = tracks * len(Stage)  # every stage finishes per track
        listener = asyncio.create_task(_finished_latencies(client, expected, ready))
        await ready.wait()
        headers = {"Authorization": f"Bearer {client.token}"}
        for path in paths:
            data = await asyncio.to_thread(path.read_bytes)
            response = await client.http.post(
                "/v1/tracks", content=data, headers=headers | {"X-Filename": path.name}
            )
            response.raise_for_status()
        latencies = await asyncio.wait_for(listener, timeout=300)
    millis = [1000 * value for value in latencies]
    return {
        "events": len(millis),
        "p50_ms": round(statistics.median(millis), 1),
        "p95_ms": round(_percentile(millis, 0.95), 1),
        "max_ms": round(max(millis), 1),
    }


def _large_wav(path: Path, size_bytes: int) -> Path:
    """A valid WAV header followed by silence up to `size_bytes` (a sparse file: instant)."""
    header = io.BytesIO()
    sf.write(header, np.zeros(16, dtype=np.int16), 44100, format="WAV", subtype="PCM_16")
    head = bytearray(header.getvalue()[:44])
    data_bytes = size_bytes - len(head)
    head[4:8] = (size_bytes - 8).to_bytes(4, "little")
    head[40:44] = data_bytes.to_bytes(4, "little")
    with path.open("wb") as file:
        file.write(head)
        file.truncate(size_bytes)
    return path


async def measure_upload_memory(work: Path, size_bytes: int) -> dict[str, Any]:
    """Peak RSS growth of this (the gateway's) process during one streamed upload."""
    big = await asyncio.to_thread(_large_wav, work / "big.wav", size_bytes)
    me = psutil.Process(os.getpid())
    async with gateway_stack(work / "upload-var") as client:
        await asyncio.sleep(1.0)  # let start-up allocations settle
        baseline = peak = me.memory_info().rss
        started = time.perf_counter()
        uploader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _UPLOAD_CLIENT,
            str(client.http.base_url.join("/v1/tracks")),
            client.token,
            str(big),
            stdout=asyncio.subprocess.PIPE,
        )
        while uploader.returncode is None:
            peak = max(peak, me.memory_info().rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(uploader.wait(), timeout=0.05)
        elapsed = time.perf_counter() - started
        answer = (await uploader.stdout.read()).decode().strip() if uploader.stdout else ""
    big.unlink()
    if not answer.startswith("202"):
        raise RuntimeError(f"the large upload was not accepted: {answer}")
    return {
        "size_mb": round(size_bytes / 1e6),
        "rss_growth_mb": round((peak - baseline) / 2**20, 1),
        "seconds": round(elapsed, 1),
        "mb_per_s": round(size_bytes / 1e6 / elapsed, 1),
    }
