"""Search latency: the real vector index at growing library sizes, for each kind of search.

People judge a library tool by how fast "more like this" answers, so this times the index calls
the gateway makes — through `stores.vectors.VectorIndex` on Qdrant Edge, the embedded default
— at each requested size, growing one collection (1k, then 10k, then 50k
tracks) rather than rebuilding it. Four kinds of query, each timed end to end in the index:

- similar-track: fetch the track's stored `audio` vector, its k nearest excluding itself;
- text: a 512-d `semantic` vector (what CLIP makes of a sentence), its k nearest;
- filtered: similar-track within ±5 % of the track's tempo and in its key and mode;
- fused: similar-track and text, each ranked `candidates(k)` deep as the gateway does, merged
  by the gateway's weighted reciprocal-rank fusion (`gateway.search.fusion.fuse`).

The library is synthetic but shaped like the real one: features drawn around typical values and
model scores (tag probabilities, a penultimate embedding around the models' training mean) go
through the real heuristic tagger, the real payload builder (`vector_payload`) and the real
acoustic vector (`audio_vector`); semantic vectors cluster by mood and genre, as CLIP text
embeddings of tag captions do. Every track belongs to one tenant, so every query ranks them all.

Each kind gets WARMUP_QUERIES untimed queries, then up to `queries` timed ones — fewer (never
under MIN_QUERIES) once it has spent its time budget at that size; the table shows how many.
Tracks go in one `VectorIndex.upsert` at a time, as the indexing stage writes them; each size
is measured after the index has been optimized (HNSW built), as it is once writes pause.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.report import markdown_table, phase, verdict
from gateway.search.engine import candidates
from gateway.search.fusion import fuse
from handlers.embedding.audio import audio_vector
from handlers.indexing.core import vector_payload
from handlers.tagging.heuristic import heuristic_tags
from handlers.understanding.labels import MSD_LABELS, MTT_LABELS
from handlers.understanding.weights import MODEL_NAME, penultimate_stats
from schemas.events import Embedded
from schemas.payloads import (
    KEY_NAMES,
    MODES,
    SEMANTIC_VECTOR_DIM,
    DecodedAudio,
    Features,
    TagScores,
    TrackRef,
    Vectors,
)
from schemas.settings import settings_from_env
from stores.vectors import AUDIO, SEMANTIC, VectorIndex
from tests.factories import make_features

TENANT = "bench"
K = 10
TEMPO_WINDOW = 0.05
WARMUP_QUERIES = 3
MIN_QUERIES = 20
FUSION_WEIGHTS = {"tracks": 1.0, "text": 1.0}
SEMANTIC_SPREAD = 0.35  # noise around a style's centre, relative to the unit-norm centre
TARGET_SIZE, TARGET_P95_MS = 10_000, 50.0
KINDS = ("similar", "text", "filtered", "fused")
KIND_LABELS = {
    "similar": "similar-track",
    "text": "text (semantic)",
    "filtered": "similar + tempo + key",
    "fused": "fused similar + text",
}


class Library:
    """Synthetic tracks, made on demand; remembers their ids and the semantic style centres."""

    def __init__(self, seed: int, tenant: str = TENANT) -> None:
        self.rng = np.random.default_rng(seed)
        self.tenant = tenant
        self.track_ids: list[str] = []
        self.styles: dict[tuple[str, str], npt.NDArray[np.float64]] = {}
        self.penultimate = penultimate_stats()

    def _scores(self) -> TagScores:
        rng = self.rng
        mean, spread = self.penultimate
        embedding = mean + spread * rng.standard_normal(mean.size)
        return TagScores(
            model=MODEL_NAME,
            msd={tag: float(p) for tag, p in zip(MSD_LABELS, rng.beta(0.4, 3.0, 50), strict=True)},
            mtt={tag: float(p) for tag, p in zip(MTT_LABELS, rng.beta(0.4, 3.0, 50), strict=True)},
            embedding=[float(v) for v in embedding],
        )

    def _features(self) -> Features:
        rng = self.rng
        return make_features(
            duration_s=float(np.clip(rng.lognormal(np.log(210.0), 0.35), 20.0, 1800.0)),
            tempo_bpm=round(float(np.clip(rng.normal(118.0, 24.0), 55.0, 200.0)), 2),
            tempo_confidence=float(rng.uniform(0.2, 1.0)),
            key=KEY_NAMES[rng.integers(len(KEY_NAMES))],
            mode=MODES[rng.integers(len(MODES))],
            key_confidence=float(rng.uniform(0.05, 1.0)),
            loudness_lufs=float(rng.normal(-12.0, 4.0)),
            loudness_range_lu=float(rng.gamma(3.0, 2.5)),
            energy=float(rng.lognormal(np.log(0.12), 0.6)),
            spectral_centroid_hz=float(rng.lognormal(np.log(2200.0), 0.35)),
            spectral_flatness=float(rng.lognormal(np.log(0.05), 0.7)),
            onset_rate=float(rng.lognormal(np.log(2.5), 0.5)),
            mfcc_mean=[float(v) for v in rng.normal(0.0, 20.0, 20)],
            mfcc_std=[float(v) for v in rng.lognormal(np.log(10.0), 0.3, 20)],
            chroma_mean=[float(v) for v in rng.dirichlet(np.ones(12))],
            chroma_std=[float(v) for v in rng.uniform(0.05, 0.3, 12)],
        )

    def style_vector(self, style: tuple[str, str]) -> list[float]:
        """A unit vector near the style's centre (a new style gets a random centre)."""
        if style not in self.styles:
            centre = self.rng.standard_normal(SEMANTIC_VECTOR_DIM)
            self.styles[style] = centre / np.linalg.norm(centre)
        noise = self.rng.standard_normal(SEMANTIC_VECTOR_DIM) / np.sqrt(SEMANTIC_VECTOR_DIM)
        vector = self.styles[style] + SEMANTIC_SPREAD * noise
        return [float(v) for v in vector / np.linalg.norm(vector)]

    def track(self) -> tuple[str, list[float], list[float], dict[str, Any]]:
        """(track id, audio vector, semantic vector, payload) of a new track."""
        event, audio, semantic = self.embedded()
        return event.track.track_id, audio, semantic, vector_payload(event)

    def embedded(self) -> tuple[Embedded, list[float], list[float]]:
        """A new track's `embedded` event, with its audio and semantic vectors beside it."""
        track_id = self.rng.bytes(16).hex()
        filename = f"track-{len(self.track_ids):05d}.flac"
        features = self._features()
        scores = self._scores()
        tags = heuristic_tags(features, scores, filename=filename)
        event = Embedded(
            track=TrackRef(
                track_id=track_id,
                tenant=self.tenant,
                blob_key=f"{self.tenant}/{track_id}",
                filename=filename,
            ),
            audio=DecodedAudio(
                analysis_key=f"{self.tenant}/{track_id}/analysis.flac",
                sample_rate=22050,
                duration_s=features.duration_s,
                source_format="FLAC",
                source_sample_rate=44100,
                source_channels=2,
            ),
            features=features,
            tags=tags,
            vectors=Vectors(audio=[]),  # vectors are passed to the index separately
            embedding_version=2,
        )
        self.track_ids.append(track_id)
        semantic = self.style_vector(((tags.mood[:1] or [""])[0], (tags.genre[:1] or [""])[0]))
        return event, audio_vector(scores), semantic

    def text_query(self) -> list[float]:
        """What a sentence naming one of the library's styles embeds to."""
        styles = list(self.styles)
        return self.style_vector(styles[self.rng.integers(len(styles))])

    def pick(self) -> str:
        return self.track_ids[self.rng.integers(len(self.track_ids))]


class _Queries:
    """The four kinds of query; each returns the track ids found, best first."""

    def __init__(self, index: VectorIndex, library: Library) -> None:
        self.index = index
        self.library = library

    async def _audio_of(self, track_id: str) -> tuple[list[float], dict[str, Any]]:
        stored = await self.index.get(TENANT, track_id)
        if stored is None:
            raise LookupError(f"track {track_id} is not in the index")
        return stored[0][AUDIO], stored[1]

    async def _nearest(
        self, track_id: str, depth: int, filters: dict[str, Any] | None = None
    ) -> list[str]:
        vector, _ = await self._audio_of(track_id)
        hits = await self.index.search(
            TENANT, AUDIO, vector, depth, filters=filters, exclude_track_id=track_id
        )
        return [hit.track_id for hit in hits]

    async def similar(self, track_id: str) -> list[str]:
        return await self._nearest(track_id, K)

    async def text(self, _track_id: str) -> list[str]:
        hits = await self.index.search(TENANT, SEMANTIC, self.library.text_query(), K)
        return [hit.track_id for hit in hits]

    async def filtered(self, track_id: str) -> list[str]:
        vector, payload = await self._audio_of(track_id)
        tempo = payload["tempo_bpm"]
        filters = {
            "tempo_min": tempo * (1 - TEMPO_WINDOW),
            "tempo_max": tempo * (1 + TEMPO_WINDOW),
            "key": payload["key"],
            "mode": payload["mode"],
        }
        hits = await self.index.search(
            TENANT, AUDIO, vector, K, filters=filters, exclude_track_id=track_id
        )
        return [hit.track_id for hit in hits]

    async def fused(self, track_id: str) -> list[str]:
        depth = candidates(K)
        text = await self.index.search(TENANT, SEMANTIC, self.library.text_query(), depth)
        rankings = {
            "tracks": await self._nearest(track_id, depth),
            "text": [hit.track_id for hit in text],
        }
        return [hit.track_id for hit in fuse(rankings, FUSION_WEIGHTS, K)]


async def _time_kind(
    query: Callable[[str], Awaitable[list[str]]], library: Library, count: int, budget_s: float
) -> dict[str, Any]:
    """Latency percentiles of up to `count` queries after WARMUP_QUERIES untimed ones; past
    `budget_s` it stops early (after MIN_QUERIES at least), so a slow size cannot stall a run."""
    for _ in range(WARMUP_QUERIES):
        await query(library.pick())
    latencies: list[float] = []
    sizes, self_hits = [], 0
    while len(latencies) < count and (len(latencies) < MIN_QUERIES or sum(latencies) < budget_s):
        track_id = library.pick()
        began = time.perf_counter()
        found = await query(track_id)
        latencies.append(time.perf_counter() - began)
        sizes.append(len(found))
        self_hits += track_id in found
    p50, p95, p99 = 1000 * np.percentile(latencies, [50, 95, 99])
    return {
        "queries": len(latencies),
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "mean_hits": round(statistics.mean(sizes), 2),
        "query_track_returned": self_hits,
    }


async def _grow(index: VectorIndex, library: Library, size: int) -> float:
    """Upsert tracks until the index holds `size`; returns milliseconds per upsert call."""
    added = size - len(library.track_ids)
    spent = 0.0
    for _ in range(added):
        track_id, audio, semantic, payload = library.track()
        began = time.perf_counter()
        await index.upsert(TENANT, track_id, audio, semantic, payload)
        spent += time.perf_counter() - began
    await index.optimize()
    return 1000 * spent / max(added, 1)


async def measure_search(
    work: Path, sizes: list[int], queries: int, budget_s: float = 60.0, seed: int = 0
) -> dict[str, Any]:
    """Latency per kind of query at each size (ascending), on one growing Edge index."""
    settings = settings_from_env({}, data_dir=str(work / "search"))
    index = await VectorIndex.open(settings)
    library = Library(seed)
    ask = _Queries(index, library)
    runs: dict[str, Any] = {}
    try:
        await index.ensure_collection(TENANT)
        for size in sorted(sizes):
            with phase(f"search: index grows to {size} tracks"):
                upsert_ms = await _grow(index, library, size)
            run: dict[str, Any] = {"upsert_ms": round(upsert_ms, 3)}
            for kind in KINDS:
                with phase(f"search: {KIND_LABELS[kind]} queries at {size} tracks"):
                    run[kind] = await _time_kind(getattr(ask, kind), library, queries, budget_s)
            run["count"] = await index.count(TENANT)
            runs[str(size)] = run
    finally:
        await index.close()
    return {"backend": "Qdrant Edge", "k": K, "sizes": runs}


def search_table(result: dict[str, Any]) -> str:
    rows = []
    for size, run in result["sizes"].items():
        label = f"{int(size) // 1000}k" if int(size) % 1000 == 0 else size
        rows.append((f"index upsert at {label} tracks, mean", f"{run['upsert_ms']:.2f} ms", "—"))
        for kind in KINDS:
            stats = run[kind]
            target = "—"
            if kind == "similar" and int(size) == TARGET_SIZE:
                target = f"p95 ≤ {TARGET_P95_MS:g} ms: {verdict(stats['p95_ms'] <= TARGET_P95_MS)}"
            rows.append(
                (
                    f"search {KIND_LABELS[kind]} at {label} tracks, p50 / p95 / p99",
                    f"{stats['p50_ms']:.1f} / {stats['p95_ms']:.1f} / {stats['p99_ms']:.1f} ms "
                    f"(n={stats['queries']})",
                    target,
                )
            )
    if str(TARGET_SIZE) not in result["sizes"]:
        rows.append(
            (
                f"search similar-track at {TARGET_SIZE // 1000}k tracks, p95",
                "not measured in this run",
                f"p95 ≤ {TARGET_P95_MS:g} ms",
            )
        )
    header = (f"measurement ({result['backend']}, k={result['k']})", "value", "target")
    return markdown_table(header, rows)
