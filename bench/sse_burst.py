"""Progress keeps flowing during a search burst: SSE arrivals measured through the real gateway.

In `tonestream up` one event loop serves the gateway, the stage runners and every SSE stream, so
a search that computed on it would freeze every progress bar. Here a thread with its own event
loop and NATS connection publishes a progress event every PUBLISH_EVERY_S (so the publishing
does not depend on the loop under test), an SSE client of the gateway's `/v1/events` in a
process of its own stamps each arrival, and bursts of BURST concurrent `POST /v1/search`
(similar-to-track, every third filtered by tempo) go through the gateway's HTTP API from a
client process of their own. The largest gap between arrivals while a burst runs — from its
start to its end — is the stall a listener would see.
bench/scale.py reports it against the 100-ms target; tests/gateway asserts that events keep
arriving during a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import numpy as np

from schemas.events import Progress
from streams.names import Stage
from streams.publish import EventPublisher

PUBLISH_EVERY_S = 0.02
BURST = 100
TICKER_TRACK = "sse-ticker"
K = 10


@dataclass(frozen=True, slots=True)
class BurstWindow:
    began: float
    ended: float
    arrivals: int  # SSE events that arrived between began and ended
    max_gap_s: float  # the largest gap between arrivals, counting the window's two edges


@dataclass(frozen=True, slots=True)
class SseDuringBurst:
    windows: list[BurstWindow]
    statuses: Counter[int]

    @property
    def burst_s(self) -> float:
        return sum(window.ended - window.began for window in self.windows)

    @property
    def max_gap_ms(self) -> float:
        return 1000 * max(window.max_gap_s for window in self.windows)


class _Ticker(threading.Thread):
    """Publishes the tenant's progress events on its own loop until stopped."""

    def __init__(self, nats_url: str, tenant: str) -> None:
        super().__init__(name="sse-ticker", daemon=True)
        self.nats_url = nats_url
        self.tenant = tenant
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # noqa: BLE001 - reported by the measuring side
            self.error = exc

    async def _publish(self) -> None:
        nc = await nats.connect(self.nats_url)
        try:
            publisher = EventPublisher(nc.jetstream())
            n = 0
            while not self.stopping.is_set():
                percent = float(n % 100)
                await publisher.progress(
                    Progress(
                        track_id=TICKER_TRACK,
                        tenant=self.tenant,
                        stage=Stage.DECODE,
                        state="started",
                        percent=percent,
                    )
                )
                n += 1
                await asyncio.sleep(PUBLISH_EVERY_S)
        finally:
            await nc.close()


# the SSE client runs in a process of its own too, as a listener's browser does: in the gateway's
# process its reads would wait behind the burst on the loop under test. It prints each event's
# arrival time (time.perf_counter is CLOCK_MONOTONIC, one clock for every process).
_SSE_CLIENT = """
import asyncio, json, sys, time, httpx
url, headers = json.loads(sys.stdin.readline())
async def main():
    async with (
        httpx.AsyncClient(base_url=url, timeout=None) as client,
        client.stream("GET", "/v1/events", headers=headers) as response,
    ):
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                print(time.perf_counter(), flush=True)
asyncio.run(main())
"""


async def _arrivals(
    url: str, headers: dict[str, str], times: list[float], ready: asyncio.Event
) -> None:
    """Stamps each SSE event's arrival, in a client process of its own, until cancelled."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SSE_CLIENT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None
    assert stdout is not None
    try:
        stdin.write(json.dumps([url, headers]).encode() + b"\n")
        stdin.close()
        async for line in stdout:
            times.append(float(line))
            ready.set()
        raise RuntimeError(f"the SSE client ended (exit {await process.wait()})")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# the burst's client runs in a process of its own: the gateway's loop should serve requests,
# not also make them (time.perf_counter is CLOCK_MONOTONIC, one clock for both processes)
_BURST_CLIENT = """
import asyncio, json, sys, time, httpx
url, headers, bodies = json.loads(sys.stdin.read())
async def main():
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await client.get("/health")
        began = time.perf_counter()
        responses = await asyncio.gather(
            *(client.post("/v1/search/", json=body, headers=headers) for body in bodies)
        )
        ended = time.perf_counter()
    print(json.dumps([began, ended, [response.status_code for response in responses]]))
asyncio.run(main())
"""


async def _burst(
    url: str, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> tuple[float, float, list[int]]:
    """(start, end, status codes) of the searches `bodies` sent at once from another process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BURST_CLIENT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate(json.dumps([url, headers, bodies]).encode())
    if process.returncode != 0:
        raise RuntimeError(f"the burst client failed (exit {process.returncode})")
    began, ended, codes = json.loads(out)
    return float(began), float(ended), [int(code) for code in codes]


def _body(track_id: str, tempo: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {"track_ids": [track_id], "k": K}
    if tempo is not None:
        body["filters"] = {"tempo_min": tempo * 0.92, "tempo_max": tempo * 1.08}
    return body


def _window(began: float, ended: float, times: list[float]) -> BurstWindow:
    inside = [t for t in times if began <= t <= ended]
    edges = [began, *inside, ended]
    gap = max(b - a for a, b in itertools.pairwise(edges))
    return BurstWindow(began=began, ended=ended, arrivals=len(inside), max_gap_s=gap)


async def sse_during_bursts(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    nats_url: str,
    tenant: str,
    track_ids: Sequence[str],
    min_burst_s: float,
    seed: int = 0,
) -> SseDuringBurst:
    """Bursts of BURST concurrent searches through the gateway at `client`, as the user of
    `headers` (tenant `tenant`, owning `track_ids`), until they took `min_burst_s` in all, while
    that user's SSE stream receives a progress event every PUBLISH_EVERY_S."""
    rng = np.random.default_rng(seed)
    times: list[float] = []
    ready = asyncio.Event()
    reader = asyncio.create_task(_arrivals(str(client.base_url), headers, times, ready))
    ticker = _Ticker(nats_url, tenant)
    ticker.start()
    windows: list[BurstWindow] = []
    statuses: Counter[int] = Counter()
    try:
        # subscribed: events arrive (or the reader failed: its error, not a timeout)
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([reader, waiting], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if reader.done():
            await reader
        if not ready.is_set():
            raise TimeoutError("no SSE event arrived within 60 s")
        while sum(w.ended - w.began for w in windows) < min_burst_s:
            bodies = [
                _body(
                    track_ids[int(rng.integers(len(track_ids)))],
                    float(rng.uniform(80, 160)) if i % 3 == 2 else None,
                )
                for i in range(BURST)
            ]
            began, ended, codes = await _burst(str(client.base_url), headers, bodies)
            statuses.update(codes)
            windows.append(_window(began, ended, times))
    finally:
        ticker.stopping.set()
        await asyncio.to_thread(ticker.join)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if ticker.error is not None:
        raise ticker.error
    return SseDuringBurst(windows=windows, statuses=statuses)
