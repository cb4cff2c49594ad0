"""Fingerprint identification: "what is this clip?" on a generated library, through the real index.

The library is `tracks` generated recordings fingerprinted by `handlers.fingerprint.core` into
`stores.fingerprints.FingerprintIndex` (Qdrant Edge on disk, the embedded default). Clips are
cut at random offsets, degraded as a phone in a room would and fingerprinted as clips
(`core.fingerprint_clip`):
- 10 s with pink noise 10 dB below the music, resampled to 44.1 kHz, MP3 at 64 kb/s;
- 5 s with pink noise at the music's level (0 dB), resampled to 48 kHz, Opus at 32 kb/s;
both decoded back by the decode stage's code. A clip counts when the first answer is its track
and the offset is within ±0.1 s. `negatives` 10-s clips of music not in the library must get no
answer at all. Then filler tracks bring the index to `filler_tracks` (hashes drawn from the
library's own hash distribution at its density, so popular hashes stay popular) and the same
clips are timed again: identify latency at that size.

Two sources, two roles. `medley` (tests.medley: generated loops) is the tuning set: the core's
first constants were set on it with seed 1. `midi` (the default of `bench.run`) validates with
seeds 13 and 7; seeds 0, 3 and 21 are its development seeds (they shaped the shared-loop rule,
MIN_LEAD, and the peak neighbourhood and floors of stop 23). The clips come from MIDI_SOURCES
pieces of bench.corpus's validation kind (General MIDI through the FluidR3 soundfont), the rest
of the library is medleys, and the negatives are other MIDI pieces of that kind.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import corpus
from bench.report import markdown_table, phase, verdict
from handlers.fingerprint import core
from stores.fingerprints import FingerprintIndex
from tests.medley import Encoding, reencoded, render_medley, with_noise

RATE = 22050
TENANT = "bench"
_SEED_BASE = 1_000_000
SOURCES = ("midi", "medley")
MIDI_SOURCES = 100  # library tracks rendered from MIDI (the clips' sources) in a "midi" run


@dataclass(frozen=True)
class Condition:
    seconds: float
    snr_db: float
    encoding: Encoding


CONDITIONS = {
    "10 s @ 10 dB, MP3 64 kb/s": Condition(10.0, 10.0, Encoding("mp3", 64_000, 44_100)),
    "5 s @ 0 dB, Opus 32 kb/s": Condition(5.0, 0.0, Encoding("opus", 32_000, 48_000)),
}
_NEGATIVE = CONDITIONS["10 s @ 10 dB, MP3 64 kb/s"]
Query = tuple[core.Hashes, core.Times]


def _clip(
    audio: np.ndarray, start: float, condition: Condition, rng: np.random.Generator, scratch: Path
) -> np.ndarray:
    piece = audio[round(start * RATE) : round((start + condition.seconds) * RATE)]
    return reencoded(with_noise(piece, condition.snr_db, rng), RATE, condition.encoding, scratch)


def _midi_pieces(seed: int, count: int, seconds: float) -> list[np.ndarray]:
    """`count` General-MIDI pieces of bench.corpus's validation kind (FluidR3 soundfont, palette
    and grooves B) under a seed of their own, rendered and mixed to mono: music of another maker
    than tests.medley, on which nothing in the fingerprint core was tuned."""
    split = replace(corpus.VALIDATION, name=f"fingerprint-{seed}", seed=_SEED_BASE + seed)
    render = corpus.Renderer(corpus.find_soundfont(split.soundfont))
    pieces = []
    for piece, midi in corpus.plan(split, count, seconds):
        stereo = render(midi, RATE, piece.tuning_cents)[: round(seconds * RATE)]
        pieces.append(stereo.mean(axis=1, dtype=np.float32))
    return pieces


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


@dataclass
class _Run:
    """One run's library, index and random source."""

    work: Path
    seconds: float
    seed: int
    source: str
    rng: np.random.Generator = field(init=False)
    library: list[np.ndarray] = field(default_factory=list)
    pooled: list[core.Hashes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 11])
        self.base = _SEED_BASE + self.seed * 100_000
        self.index = FingerprintIndex(self.work / "fingerprints")

    def build(self, tracks: int) -> dict[str, Any]:
        self.sources = min(MIDI_SOURCES, tracks) if self.source == "midi" else tracks
        with phase(f"render {tracks} library tracks of {self.seconds:.0f} s ({self.source})"):
            if self.source == "midi":
                self.library = _midi_pieces(self.seed, self.sources, self.seconds)
            self.library += [
                render_medley(self.base + i, self.seconds, RATE)
                for i in range(len(self.library), tracks)
            ]
        cpu = 0.0
        with phase("fingerprint and index the library"):
            for i, audio in enumerate(self.library):
                began = time.process_time()
                hashes, times = core.fingerprint(audio, RATE)
                cpu += time.process_time() - began
                self.pooled.append(hashes)
                self.index.add(TENANT, f"track-{i}", hashes, times)
            self.index.flush()
        audio_s = tracks * self.seconds
        return {
            "tracks": tracks,
            "track_seconds": self.seconds,
            "x_realtime_per_core": round(audio_s / cpu),
            "hashes_per_s": round(sum(h.size for h in self.pooled) / audio_s, 1),
            "index_mb_per_hour": round(self.index.size_bytes() / 1e6 / (audio_s / 3600), 1),
        }

    def identify(
        self, condition: Condition, clips: int, scratch: Path
    ) -> tuple[dict[str, Any], list[Query]]:
        correct = offset_ok = 0
        hits: list[int] = []
        queries: list[Query] = []
        for _ in range(clips):
            source = int(self.rng.integers(self.sources))
            start = float(self.rng.uniform(0.0, self.seconds - condition.seconds))
            clip = _clip(self.library[source], start, condition, self.rng, scratch)
            query = core.fingerprint_clip(clip, RATE)
            queries.append(query)
            found = self.index.identify(TENANT, *query)
            if found and found[0].track_id == f"track-{source}":
                correct += 1
                offset_ok += abs(found[0].offset_s - start) <= 0.1
                hits.append(found[0].hits)
        scores = {
            "clips": clips,
            "top1": round(correct / clips, 3),
            "top1_offset_within_0_1s": round(offset_ok / clips, 3),
            "median_hits_when_right": statistics.median(hits) if hits else 0,
        }
        return scores, queries

    def false_matches(self, negatives: int, scratch: Path) -> int:
        count = 0
        if self.source == "midi":
            others = _midi_pieces(self.seed + 50_000, negatives, 12.0)
        else:
            others = [render_medley(self.base + 50_000 + i, 12.0, RATE) for i in range(negatives)]
        for audio in others:
            clip = _clip(audio, 1.0, _NEGATIVE, self.rng, scratch)
            query = core.fingerprint_clip(clip, RATE)
            count += bool(self.index.identify(TENANT, *query))
        return count

    def grow(self, size: int) -> float:
        """Filler tracks up to `size`; returns filler tracks written per second."""
        pool = np.concatenate(self.pooled)
        per_track = round(pool.size / len(self.library))
        frames = round(self.seconds / core.FRAME_S)
        began = time.perf_counter()
        for i in range(len(self.library), size):
            times = np.sort(self.rng.integers(0, frames, per_track)).astype(np.int32)
            self.index.add(TENANT, f"filler-{i}", self.rng.choice(pool, per_track), times)
        self.index.flush()
        self.index.optimize()
        return round((size - len(self.library)) / max(1e-9, time.perf_counter() - began), 1)

    def latencies(self, queries: list[Query]) -> dict[str, float]:
        latencies: list[float] = []
        for hashes, times in queries:
            began = time.perf_counter()
            self.index.identify(TENANT, hashes, times)
            latencies.append(time.perf_counter() - began)
        return {
            "p50_ms_at_size": _percentile(latencies, 50),
            "p95_ms_at_size": _percentile(latencies, 95),
        }


def measure_fingerprint(
    work: Path,
    *,
    tracks: int,
    seconds: float,
    clips: int,
    negatives: int,
    size: int,
    seed: int = 0,
    source: str = "medley",
) -> dict[str, Any]:
    run = _Run(work, seconds, seed, source)
    result = run.build(tracks) | {"source": source, "seed": seed, "conditions": {}}
    queries: dict[str, list[Query]] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp, phase("identify degraded clips"):
        for name, condition in CONDITIONS.items():
            result["conditions"][name], queries[name] = run.identify(condition, clips, Path(tmp))
        result["negatives"] = {
            "clips": negatives,
            "false_matches": run.false_matches(negatives, Path(tmp)),
        }
    with phase(f"grow the index to {size} tracks with filler hashes"):
        result["filler_tracks_per_s"] = run.grow(size)
    result["size_tracks"] = size
    result["index_mb_at_size"] = round(run.index.size_bytes() / 1e6, 1)
    with phase(f"time identify at {size} tracks"):
        for name, condition_queries in queries.items():
            result["conditions"][name] |= run.latencies(condition_queries)
    run.index.close()
    return result


def fingerprint_table(result: dict[str, Any]) -> str:
    rows = []
    targets = {"10 s @ 10 dB, MP3 64 kb/s": 0.98, "5 s @ 0 dB, Opus 32 kb/s": 0.85}
    for name, scores in result["conditions"].items():
        target = targets[name]
        rows.append(
            (
                f"top-1, {name} ({scores['clips']} clips, offset ±0.1 s)",
                f"{scores['top1_offset_within_0_1s']:.1%} (track right: {scores['top1']:.1%})",
                f"≥ {target:.0%}: {verdict(scores['top1_offset_within_0_1s'] >= target)}",
            )
        )
        rows.append(
            (
                f"identify p50 / p95 at {result['size_tracks']} tracks, {name}",
                f"{scores['p50_ms_at_size']} ms / {scores['p95_ms_at_size']} ms "
                "(index query + offset check)",
                f"p95 ≤ 200 ms: {verdict(scores['p95_ms_at_size'] <= 200)}",
            )
        )
    negatives = result["negatives"]
    rows += [
        (
            f"false matches, {negatives['clips']} clips of tracks not in the library",
            str(negatives["false_matches"]),
            f"0: {verdict(negatives['false_matches'] == 0)}",
        ),
        ("fingerprinting × realtime (one core)", f"{result['x_realtime_per_core']}×", "≥ 1000×"),
        ("hashes per second of audio", str(result["hashes_per_s"]), "—"),
        ("index size per hour of audio", f"{result['index_mb_per_hour']} MB", "—"),
        (f"index size at {result['size_tracks']} tracks", f"{result['index_mb_at_size']} MB", "—"),
    ]
    return markdown_table(("measurement", "value", "target"), rows)
