"""Fingerprint identification: "what is this clip?" on a generated library, through the real index.

The library is `tracks` medleys (tests.medley: non-repeating generated music) fingerprinted by
`handlers.fingerprint.core` into `stores.fingerprints.FingerprintIndex` (Qdrant Edge on disk,
the embedded default). Clips are cut at random offsets and degraded as a phone in a room would:
- 10 s with pink noise 10 dB below the music, resampled to 44.1 kHz, MP3 at 64 kb/s;
- 5 s with pink noise at the music's level (0 dB), resampled to 48 kHz, Opus at 32 kb/s;
both decoded back by the decode stage's code. A clip counts when the first answer is its track
and the offset is within ±0.1 s. `negatives` clips of medleys not in the library must get no
answer at all. Then filler tracks bring the index to `filler_tracks` (hashes drawn from the
library's own hash distribution at its density, so popular hashes stay popular) and the same
clips are timed again: identify latency at that size. Library and clip seeds are disjoint from
the ones the thresholds were chosen on (seeds below 100 000).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import markdown_table, phase, verdict
from handlers.fingerprint import core
from stores.fingerprints import FingerprintIndex
from tests.medley import reencoded, render_medley, with_noise

RATE = 22050
TENANT = "bench"
_SEED_BASE = 1_000_000
CONDITIONS = {  # name → (clip seconds, SNR dB, codec, bit rate, sample rate)
    "10 s @ 10 dB, MP3 64 kb/s": (10.0, 10.0, "mp3", 64_000, 44_100),
    "5 s @ 0 dB, Opus 32 kb/s": (5.0, 0.0, "opus", 32_000, 48_000),
}


def _clip(
    audio: np.ndarray, start: float, condition: tuple[float, float, str, int, int],
    rng: np.random.Generator, scratch: Path,
) -> np.ndarray:  # fmt: skip
    seconds, snr, kind, bit_rate, rate = condition
    piece = audio[round(start * RATE) : round((start + seconds) * RATE)]
    return reencoded(with_noise(piece, snr, rng), RATE, kind, bit_rate, rate, scratch)


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def measure_fingerprint(
    work: Path, tracks: int, seconds: float, clips: int, negatives: int, filler_tracks: int,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    rng = np.random.default_rng([seed, 11])
    base = _SEED_BASE + seed * 100_000
    with phase(f"render {tracks} library tracks of {seconds:.0f} s"):
        library = [render_medley(base + i, seconds, RATE) for i in range(tracks)]
    index = FingerprintIndex(work / "fingerprints")
    cpu = 0.0
    pooled: list[np.ndarray] = []
    with phase("fingerprint and index the library"):
        for i, audio in enumerate(library):
            began = time.process_time()
            hashes, times = core.fingerprint(audio, RATE)
            cpu += time.process_time() - began
            pooled.append(hashes)
            index.add(TENANT, f"track-{i}", hashes, times)
        index.flush()
    hours = tracks * seconds / 3600
    hashes_total = sum(h.size for h in pooled)
    result: dict[str, Any] = {
        "tracks": tracks,
        "track_seconds": seconds,
        "x_realtime_per_core": round(tracks * seconds / cpu),
        "hashes_per_s": round(hashes_total / (tracks * seconds), 1),
        "index_mb_per_hour": round(index.size_bytes() / 1e6 / hours, 1),
        "conditions": {},
    }
    queries: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp, phase("identify degraded clips"):
        scratch = Path(tmp)
        for name, condition in CONDITIONS.items():
            correct = offset_ok = 0
            hits: list[int] = []
            queries[name] = []
            for _ in range(clips):
                source = int(rng.integers(tracks))
                start = float(rng.uniform(0.0, seconds - condition[0]))
                clip = _clip(library[source], start, condition, rng, scratch)
                query = core.fingerprint(clip, RATE)
                found = index.identify(TENANT, *query)
                queries[name].append(query)
                if found and found[0].track_id == f"track-{source}":
                    correct += 1
                    offset_ok += abs(found[0].offset_s - start) <= 0.1
                    hits.append(found[0].hits)
            result["conditions"][name] = {
                "clips": clips,
                "top1": round(correct / clips, 3),
                "top1_offset_within_0_1s": round(offset_ok / clips, 3),
                "median_hits_when_right": statistics.median(hits) if hits else 0,
            }
        false_matches = 0
        for i in range(negatives):
            audio = render_medley(base + 50_000 + i, 12.0, RATE)
            clip = _clip(audio, 1.0, CONDITIONS["10 s @ 10 dB, MP3 64 kb/s"], rng, scratch)
            false_matches += bool(index.identify(TENANT, *core.fingerprint(clip, RATE)))
        result["negatives"] = {"clips": negatives, "false_matches": false_matches}
    with phase(f"grow the index to {filler_tracks} tracks with filler hashes"):
        pool = np.concatenate(pooled)
        per_track = round(hashes_total / tracks)
        frames = round(seconds / core.FRAME_S)
        began = time.perf_counter()
        for i in range(tracks, filler_tracks):
            times = np.sort(rng.integers(0, frames, per_track)).astype(np.int32)
            index.add(TENANT, f"filler-{i}", rng.choice(pool, per_track), times)
        index.flush()
        index.optimize()
        result["filler_tracks_per_s"] = round(
            (filler_tracks - tracks) / max(1e-9, time.perf_counter() - began), 1
        )
    result["size_tracks"] = filler_tracks
    result["index_mb_at_size"] = round(index.size_bytes() / 1e6, 1)
    with phase(f"time identify at {filler_tracks} tracks"):
        for name, condition_queries in queries.items():
            latencies: list[float] = []
            for hashes, times in condition_queries:
                began = time.perf_counter()
                index.identify(TENANT, hashes, times)
                latencies.append(time.perf_counter() - began)
            result["conditions"][name] |= {
                "p50_ms_at_size": _percentile(latencies, 50),
                "p95_ms_at_size": _percentile(latencies, 95),
            }
    index.close()
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
