"""Scale: one user's large library (10k, then 100k tracks) on one small box.

It runs on `tonestream up`'s embedded stack in this process (every stage and the gateway
running, idle), for a registered user. The library grows through the real code —
`VectorIndex.upsert_many` into the vector index, and the catalog documents
`Catalog.create_track` writes, one insert per batch, into the catalog (the embedded SecantusDB
server unless TONESTREAM_MONGO_URL is set; Qdrant Edge unless TONESTREAM_QDRANT_URL is set) —
from synthetic tracks shaped like real ones (bench.search.Library: real tagger, payload and
catalog fields).
Build time is reported per size: writes, then the index build (`optimize`: HNSW graphs) that
follows a pause in writes. Then latency p50/p95/p99 of:

- similar: a track's k nearest by its stored vector (read and searched in one request, as the
  gateway's "similar to these tracks" does);
- filtered: the same within a BPM range (±8 %), in the track's key and with its first mood;
- fused: three inputs as the gateway ranks them (`candidates(k)` deep each: a track, a text
  vector in the semantic space, an audio example's vector) in one `search_many` batch, merged
  by `fuse`;
- text: keyword search in the catalog (the text mode without CLIP weights);
- list: a filtered page (BPM range and key) of the catalog listing, newest first;
- paging: each next page of the unfiltered listing, by cursor (both with the fields the
  gateway's track list shows);
and RSS (this process, with the stack; Edge's owning process), the event loop's largest stall
while a burst of concurrent index searches runs (a 5-ms ticker on the loop that the gateway's
SSE streams share), and the largest gap between progress events arriving on the user's SSE
stream through the gateway while bursts of concurrent `POST /v1/search` run (bench.sse_burst).

`catalog_max` stops the catalog growing at that many documents (its kinds are then measured only
at sizes it reached): the embedded SecantusDB server is pure Python and slow to fill.
A 1M-track run needs a Qdrant server (and a MongoDB): point TONESTREAM_QDRANT_URL and
TONESTREAM_MONGO_URL at them and pass `--scale-sizes 1000000` (see the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psutil

from bench.report import markdown_table, phase, verdict
from bench.search import Library
from bench.sse_burst import sse_during_bursts
from cli.up import running_gateway, running_system
from gateway.search.engine import candidates
from gateway.search.fusion import fuse
from gateway.views import SUMMARY_FIELDS as LISTED
from handlers.indexing.core import catalog_fields, vector_payload
from schemas.api import SearchFilters, TokenPair, User
from schemas.settings import settings_from_env
from stores.catalog import Catalog, upload_document
from stores.catalog_queries import keywords
from stores.vectors import AUDIO, SEMANTIC, Search, VectorIndex
from stores.vectors_edge import EdgeBackend
from streams.server import free_port

TENANT = "scale"
K = 10
PAGE = 50
BATCH = 500
TEMPO_WINDOW = 0.08
BURST = 100
WARMUP = 3
MIN_QUERIES = 10
TICK_S = 0.005
KINDS = ("similar", "filtered", "fused", "text", "list", "paging")
CATALOG_KINDS = frozenset({"text", "list", "paging"})
LABELS = {
    "similar": "similar",
    "filtered": "filtered similar (BPM + key + mood)",
    "fused": "fused (track + text + audio example)",
    "text": "text (catalog keywords)",
    "list": f"list page of {PAGE} (BPM + key filters)",
    "paging": f"next page of {PAGE} by cursor",
}
TARGETS_MS = {"similar": 5.0, "filtered": 10.0, "fused": 25.0, "list": 50.0, "paging": 50.0}
TARGET_SIZE = 100_000
TARGET_RSS_MB = 1024
TARGET_GAP_MS = 100.0
SSE_BURST_S = 3.0  # bursts through the gateway until they took this long in all


def _rss_mb(pid: int) -> float:
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / 2**20


class ScaleLibrary:
    """One user's synthetic library, grown through the real index and catalog code, and the
    queries timed over it."""

    def __init__(
        self,
        index: VectorIndex,
        catalog: Catalog,
        seed: int,
        catalog_max: int,
        tenant: str = TENANT,
    ) -> None:
        self.tenant = tenant
        self.index = index
        self.catalog = catalog
        self.catalog_max = catalog_max
        self.documents = 0
        self.library = Library(seed, tenant)
        self.rng = np.random.default_rng(seed + 1)
        self.cursors: list[str] = []
        self.first_upload = time.time() - catalog_max  # one upload a second, the last one now

    async def grow(self, size: int) -> dict[str, float]:
        """Add tracks until there are `size`; seconds spent writing and building the index."""
        writes = 0.0
        created_at = self.first_upload + self.documents
        while len(self.library.track_ids) < size:
            batch = [
                self.library.embedded()
                for _ in range(min(BATCH, size - len(self.library.track_ids)))
            ]
            began = time.perf_counter()
            await self.index.upsert_many(
                self.tenant,
                [
                    (event.track.track_id, audio, semantic, vector_payload(event))
                    for event, audio, semantic in batch
                ],
            )
            documents = []
            for event, _, _ in batch[: max(0, self.catalog_max - self.documents)]:
                created_at += 1.0
                upload = {
                    "filename": event.track.filename,
                    "sha256": event.track.track_id * 2,
                    "status": "indexed",
                    "created_at": created_at,
                }
                documents.append((event.track.track_id, catalog_fields(event) | upload))
            if documents:  # as Catalog.create_track writes them, in one insert per batch
                written = [upload_document(self.tenant, tid, fields) for tid, fields in documents]
                await self.catalog.tracks.insert_many(written)
                await self.catalog.note_written(self.tenant, written, added=len(written))
                self.documents += len(documents)
            writes += time.perf_counter() - began
        began = time.perf_counter()
        await self.index.optimize()
        return {
            "writes_s": round(writes, 1),
            "index_build_s": round(time.perf_counter() - began, 1),
        }

    def _pick(self) -> str:
        return self.library.pick()

    async def _vector(self, track_id: str) -> tuple[list[float], dict[str, Any]]:
        stored = await self.index.get(self.tenant, track_id)
        if stored is None:
            raise LookupError(f"track {track_id} is not in the index")
        return stored[0][AUDIO], stored[1]

    async def similar(self) -> int:
        hits = await self.index.search_like(self.tenant, [self._pick()], K)
        return len(hits)

    async def filtered(self) -> int:
        track_id = self._pick()
        vector, payload = await self._vector(track_id)
        tempo = payload["tempo_bpm"]
        filters = {
            "tempo_min": tempo * (1 - TEMPO_WINDOW),
            "tempo_max": tempo * (1 + TEMPO_WINDOW),
            "key": payload["key"],
            **({"mood": payload["mood"][0]} if payload["mood"] else {}),
        }
        hits = await self.index.search(
            self.tenant, AUDIO, vector, K, filters=filters, exclude_track_id=track_id
        )
        return len(hits)

    async def fused(self) -> int:
        depth = candidates(K)
        example = np.asarray((await self._vector(self._pick()))[0])
        example = example + self.rng.normal(0, 0.02, example.shape)
        tracks, text, audio = await self.index.search_many(
            self.tenant,
            [
                Search(AUDIO, [], depth, like=[self._pick()]),
                Search(SEMANTIC, self.library.text_query(), depth),
                Search(AUDIO, [float(v) for v in example], depth),
            ],
        )
        rankings = {
            name: [hit.track_id for hit in hits]
            for name, hits in (("tracks", tracks), ("text", text), ("audio", audio))
        }
        return len(fuse(rankings, {}, K))

    async def text(self) -> int:
        _, payload = await self._vector(self._pick())
        labels = [*payload["mood"][:1], *payload["genre"][:1]] or [payload["filename"]]
        words = keywords(" ".join(labels))
        found = await self.catalog.keyword_search(
            self.tenant, words, SearchFilters(), candidates(K)
        )
        return len(found)

    async def list(self) -> int:
        tempo = float(self.rng.uniform(80, 160))
        filters = SearchFilters(
            tempo_min=tempo * (1 - TEMPO_WINDOW),
            tempo_max=tempo * (1 + TEMPO_WINDOW),
            key=str(self.rng.choice(["C", "D", "E", "F", "G", "A"])),
        )
        page, _ = await self.catalog.list_tracks(
            self.tenant, filters, words=[], status=None, cursor=None, limit=PAGE, fields=LISTED
        )
        return len(page)

    async def paging(self) -> int:
        cursor = self.cursors[-1] if self.cursors else None
        page, following = await self.catalog.list_tracks(
            self.tenant,
            SearchFilters(),
            words=[],
            status=None,
            cursor=cursor,
            limit=PAGE,
            fields=LISTED,
        )
        if following is None:
            self.cursors.clear()  # past the last page: start again from the first
        else:
            self.cursors.append(following)
        return len(page)


async def _latency(
    query: Callable[[], Awaitable[int]], count: int, budget_s: float
) -> dict[str, Any]:
    """Percentiles of up to `count` queries after WARMUP untimed ones; past `budget_s` of timed
    queries it stops early (after MIN_QUERIES at least), so a slow kind cannot stall a run."""
    for _ in range(WARMUP):
        await query()
    latencies: list[float] = []
    found: list[int] = []
    while len(latencies) < count and (len(latencies) < MIN_QUERIES or sum(latencies) < budget_s):
        began = time.perf_counter()
        found.append(await query())
        latencies.append(time.perf_counter() - began)
    p50, p95, p99 = 1000 * np.percentile(latencies, [50, 95, 99])
    return {
        "queries": len(latencies),
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "mean_results": round(float(np.mean(found)), 1),
    }


async def _loop_stall_during_burst(scale: ScaleLibrary) -> dict[str, Any]:
    """The event loop's largest gap between 5-ms ticks while BURST searches run at once."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            gaps.append(now - last - TICK_S)
            last = now

    probe = asyncio.create_task(ticker())
    kinds = (scale.similar, scale.filtered, scale.fused)
    began = time.perf_counter()
    await asyncio.gather(*(kinds[i % len(kinds)]() for i in range(BURST)))
    burst_s = time.perf_counter() - began
    done.set()
    await probe
    return {
        "searches": BURST,
        "burst_s": round(burst_s, 2),
        "ticks": len(gaps),
        "max_gap_ms": round(1000 * max(gaps, default=0.0), 1),
    }


@dataclass
class _Stack:
    index: VectorIndex
    catalog: Catalog
    http: httpx.AsyncClient
    headers: dict[str, str]
    tenant: str
    nats_url: str


@contextlib.asynccontextmanager
async def _stack(work: Path) -> AsyncIterator[_Stack]:
    """`tonestream up` in this process (its own catalog database and collection prefix), its
    gateway on a free port, and a registered user whose library the bench grows."""
    settings = settings_from_env(
        None,
        data_dir=str(work / "scale"),
        mongo_db=f"bench-scale-{os.getpid()}",
        qdrant_collection=f"bench-scale-{os.getpid()}",
        port=free_port(),
        clip_enabled=False,
        rate_limit_per_minute=1e6,
        rate_limit_burst=100_000,
        access_token_ttl_s=24 * 3600.0,  # one sign-in outlives a 100k build (26 min here)
    )
    async with (
        running_system(settings) as worker,
        running_gateway(worker) as url,
        httpx.AsyncClient(base_url=url, timeout=600) as http,
    ):
        assert worker.vectors is not None
        assert worker.catalog is not None
        index, catalog = worker.vectors, worker.catalog
        try:
            credentials = {"username": "scale", "password": "bench password"}
            registered = await http.post("/v1/auth/register", json=credentials)
            registered.raise_for_status()
            login = await http.post("/v1/auth/login", json=credentials)
            login.raise_for_status()
            token = msgspec.json.decode(login.content, type=TokenPair).access_token
            yield _Stack(
                index,
                catalog,
                http,
                {"Authorization": f"Bearer {token}"},
                msgspec.json.decode(registered.content, type=User).user_id,
                worker.nats_url,
            )
        finally:
            await index.drop()
            if settings.mongo_url:  # an embedded server's folder goes with the work dir
                await catalog.client.drop_database(catalog.db.name)


async def _sse_during_burst(stack: _Stack, scale: ScaleLibrary) -> dict[str, Any]:
    result = await sse_during_bursts(
        stack.http,
        stack.headers,
        nats_url=stack.nats_url,
        tenant=stack.tenant,
        track_ids=scale.library.track_ids,
        min_burst_s=SSE_BURST_S,
    )
    return {
        "searches": sum(result.statuses.values()),
        "ok": result.statuses.get(200, 0),
        "burst_s": round(result.burst_s, 2),
        "events": sum(window.arrivals for window in result.windows),
        "max_gap_ms": round(result.max_gap_ms, 1),
    }


async def measure_scale(
    work: Path,
    sizes: list[int],
    queries: int,
    budget_s: float = 60.0,
    *,
    seed: int = 0,
    catalog_max: int | None = None,
) -> dict[str, Any]:
    """Build time, latency per kind, RSS, loop stall and SSE gaps at each size (ascending, one
    library), on the embedded stack with its gateway running."""
    runs: dict[str, Any] = {}
    async with _stack(work) as stack:
        index = stack.index
        edge = isinstance(index.backend, EdgeBackend)
        owner = await index.backend.pid() if isinstance(index.backend, EdgeBackend) else None
        rss_start = {"main": _rss_mb(os.getpid())} | ({"edge": _rss_mb(owner)} if owner else {})
        most = max(sizes) if catalog_max is None else catalog_max
        scale = ScaleLibrary(index, stack.catalog, seed, most, tenant=stack.tenant)
        for size in sorted(sizes):
            with phase(f"scale: library grows to {size} tracks"):
                run: dict[str, Any] = {"build": await scale.grow(size)}
            for kind in KINDS:
                if kind in CATALOG_KINDS and scale.documents < size:
                    continue  # the catalog stopped growing at catalog_max
                with phase(f"scale: {LABELS[kind]} at {size} tracks"):
                    run[kind] = await _latency(getattr(scale, kind), queries, budget_s)
            with phase(f"scale: {BURST} concurrent searches at {size} tracks"):
                run["burst"] = await _loop_stall_during_burst(scale)
            with phase(f"scale: SSE during bursts of {BURST} gateway searches at {size} tracks"):
                run["sse"] = await _sse_during_burst(stack, scale)
            run["rss_mb"] = {"main": round(_rss_mb(os.getpid()))}
            if owner:
                run["rss_mb"]["edge"] = round(_rss_mb(owner))
            run["count"] = await index.count(stack.tenant)
            run["documents"] = scale.documents
            runs[str(size)] = run
            partial = {"backend": "", "k": K, "rss_start_mb": rss_start, "sizes": {str(size): run}}
            print(scale_table(partial), flush=True)  # each size's figures as soon as they exist
    backend = "Qdrant Edge (owning process)" if edge else "Qdrant server"
    return {"backend": backend, "k": K, "rss_start_mb": rss_start, "sizes": runs}


def _label(size: str) -> str:
    return f"{int(size) // 1000}k" if int(size) % 1000 == 0 else size


def scale_table(result: dict[str, Any]) -> str:
    rows = []
    start = result["rss_start_mb"]
    for size, run in result["sizes"].items():
        at = _label(size)
        build = run["build"]
        rows.append(
            (
                f"build to {at} tracks: writes (index + catalog) / index build",
                f"{build['writes_s']} s / {build['index_build_s']} s",
                "—",
            )
        )
        for kind in KINDS:
            if kind not in run:
                documents = run["documents"]
                rows.append(
                    (f"{LABELS[kind]} at {at}", f"not measured ({documents} documents)", "—")
                )
                continue
            stats = run[kind]
            target = "—"
            if kind in TARGETS_MS and int(size) == TARGET_SIZE:
                goal = TARGETS_MS[kind]
                target = f"p95 ≤ {goal:g} ms: {verdict(stats['p95_ms'] <= goal)}"
            rows.append(
                (
                    f"{LABELS[kind]} at {at}, p50 / p95 / p99",
                    f"{stats['p50_ms']:.1f} / {stats['p95_ms']:.1f} / {stats['p99_ms']:.1f} ms "
                    f"(n={stats['queries']}, {stats['mean_results']} results)",
                    target,
                )
            )
        burst = run["burst"]
        target = f"≤ {TARGET_GAP_MS:g} ms: {verdict(burst['max_gap_ms'] <= TARGET_GAP_MS)}"
        rows.append(
            (
                f"event-loop stall during {burst['searches']} concurrent searches at {at}",
                f"max {burst['max_gap_ms']} ms (burst took {burst['burst_s']} s)",
                target,
            )
        )
        if "sse" in run:
            sse = run["sse"]
            target = f"≤ {TARGET_GAP_MS:g} ms: {verdict(sse['max_gap_ms'] <= TARGET_GAP_MS)}"
            rows.append(
                (
                    f"SSE progress gap (gateway) during bursts of {BURST} searches at {at}",
                    f"max {sse['max_gap_ms']} ms ({sse['events']} events; {sse['ok']}/"
                    f"{sse['searches']} searches answered in {sse['burst_s']} s)",
                    target,
                )
            )
        rss = run["rss_mb"]
        if "edge" in rss:
            growth = rss["edge"] - start["edge"]
            target = "—"
            if int(size) == TARGET_SIZE:
                target = f"≤ {TARGET_RSS_MB} MB: {verdict(growth <= TARGET_RSS_MB)}"
            rows.append(
                (
                    f"RSS at {at}: Edge owning process (growth) / this process",
                    f"{rss['edge']} MB (+{growth:.0f} MB) / {rss['main']} MB",
                    target,
                )
            )
        else:
            rows.append((f"RSS at {at}: this process", f"{rss['main']} MB", "—"))
    header = (f"measurement ({result['backend']}, k={result['k']})", "value", "target")
    return markdown_table(header, rows)
