"""Ingest throughput and memory: generated tracks through the real embedded pipeline, from
upload to indexed. Steady state: one warm-up track first (pool start-up, imports) is excluded.

The decode and features stages are also timed on their own, by CPU time (time.process_time, which
holds on a shared machine where wall time does not): the same jobs the two stages run in a pool
worker, one track after another in one single-threaded process (bench.stage_cpu)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.stack import ProcessProbe, Stack, embedded_stack
from schemas.events import Indexed, Progress, Uploaded, decode
from schemas.payloads import KEY_NAMES, TrackRef
from streams.names import Stage
from tests.synth import write_track


def _make_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    """Realistic-length pieces: drums, bass, chords, melody; every third one without drums."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        bpm = 70.0 + (i * 37) % 110
        key, mode = KEY_NAMES[(i * 5) % 12], ("major", "minor")[i % 2]
        fmt = ("FLAC", "WAV")[i % 2]
        path = folder / f"track{i:03d}.{fmt.lower()}"
        write_track(
            path, format=fmt, bpm=bpm, key=key, mode=mode, seconds=seconds,
            drums=i % 3 != 2, stereo=True, seed=i,
        )  # fmt: skip
        paths.append(path)
    return paths


async def _upload(stack: Stack, path: Path) -> str:
    track_id = uuid.uuid4().hex
    key = f"bench/{track_id}/original"
    size = await stack.blobs.put_file(key, path)
    track = TrackRef(
        track_id=track_id, tenant="bench", blob_key=key, filename=path.name, size_bytes=size
    )
    await stack.publisher.publish(Uploaded(track=track), stage="uploaded", version=1)
    return track_id


async def _run_batch(stack: Stack, paths: list[Path]) -> tuple[float, dict[str, list[float]]]:
    """Upload all, wait until all are indexed; returns wall seconds and per-stage durations."""
    done: set[str] = set()
    starts: dict[tuple[str, str], float] = {}
    stage_s: dict[str, list[float]] = {str(stage): [] for stage in Stage}
    all_done = asyncio.Event()
    expected: set[str] = set()

    async def on_indexed(msg: Any) -> None:
        event = decode(msg.data)
        if isinstance(event, Indexed) and event.track.track_id in expected:
            done.add(event.track.track_id)
            if done >= expected:
                all_done.set()

    async def on_progress(msg: Any) -> None:
        event = decode(msg.data)
        if isinstance(event, Progress):
            if event.state == "started":
                starts[(event.track_id, event.stage)] = event.at
            elif event.state == "finished" and (event.track_id, event.stage) in starts:
                stage_s[event.stage].append(event.at - starts[(event.track_id, event.stage)])

    subs = [
        await stack.nc.subscribe("audio.indexed.bench", cb=on_indexed),
        await stack.nc.subscribe("progress.bench.*", cb=on_progress),
    ]
    began = time.perf_counter()
    for path in paths:
        expected.add(await _upload(stack, path))
    await asyncio.wait_for(all_done.wait(), timeout=120 + 30 * len(paths))
    wall = time.perf_counter() - began
    for sub in subs:
        await sub.unsubscribe()
    return wall, stage_s


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_stage_cpu(paths: list[Path], seconds: float) -> dict[str, Any]:
    """Decode and features CPU per track in one fresh process (the first track warms it up)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.stage_cpu", *map(str, paths),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"bench.stage_cpu failed with exit code {process.returncode}")
    runs = json.loads(output)[1:]
    decode = statistics.median(r[0] for r in runs)
    features = statistics.median(r[1] for r in runs)
    by_format: dict[str, list[float]] = {}
    for path, run in zip(paths[1:], runs, strict=True):
        by_format.setdefault(path.suffix.lstrip(".").upper(), []).append(run[0])
    cores = os.cpu_count() or 1
    return {
        "decode_cpu_s": round(decode, 3),
        "features_cpu_s": round(features, 3),
        "decode_cpu_s_by_format": {k: round(statistics.median(v), 3) for k, v in by_format.items()},
        "x_realtime_cores": round(seconds / ((decode + features) / cores), 1),
        "cores": cores,
        "worker_peak_rss_mb": round(max(r[2] for r in runs)),
    }


async def measure_ingest(work: Path, tracks: int, seconds: float) -> dict[str, Any]:
    paths = _make_tracks(work / "audio", tracks + 1, seconds)
    probe = ProcessProbe()
    async with embedded_stack(work / "var") as stack:
        await _run_batch(stack, paths[:1])  # warm-up: pool processes, imports, first JIT
        probe.start()
        wall, stage_s = await _run_batch(stack, paths[1:])
        await probe.stop()
    audio_s = tracks * seconds
    cores = os.cpu_count() or 1
    return {
        "tracks": tracks,
        "track_seconds": seconds,
        "wall_s": round(wall, 2),
        "x_realtime": round(audio_s / wall, 1),
        "tracks_per_min": round(tracks / wall * 60, 1),
        "stage_p50_s": {k: round(statistics.median(v), 3) for k, v in stage_s.items() if v},
        "stage_p95_s": {k: round(_pct(v, 0.95), 3) for k, v in stage_s.items() if v},
        "peak_rss_mb": {k: round(v / 2**20) for k, v in sorted(probe.peak_rss.items())},
        "pool_worker_peak_rss_mb": probe.peak_mb("pool"),
        "cpu_utilisation": round(probe.cpu_utilisation, 2),
        # CPU seconds our processes spent: on a shared machine, what the wall time would be
        # with every core ours is about cpu_s / cores
        "cpu_s_per_audio_min": round(probe.cpu_s / (audio_s / 60), 3),
        "x_realtime_cpu": round(audio_s / (probe.cpu_s / cores), 1) if probe.cpu_s else 0.0,
        "cpu_s_per_audio_min_by_process": {
            name: round(cpu / (audio_s / 60), 3) for name, cpu in probe.cpu_s_by_process.items()
        },
        "decode_features": await measure_stage_cpu(paths, seconds),
    }


async def measure_long_track_memory(work: Path, seconds: float) -> dict[str, Any]:
    """Peak RSS of each process while one long track goes through every stage."""
    paths = _make_tracks(work / "long", 1, seconds)
    probe = ProcessProbe()
    async with embedded_stack(work / "var-long") as stack:
        probe.start()
        wall, _ = await _run_batch(stack, paths)
        await probe.stop()
    decode_features = await measure_stage_cpu([paths[0], paths[0]], seconds)
    return {
        "track_seconds": seconds,
        "wall_s": round(wall, 2),
        "main_peak_rss_mb": probe.peak_mb("main"),
        "pool_worker_peak_rss_mb": probe.peak_mb("pool"),
        # decode + features alone in a fresh worker that never loads the models
        "decode_features_worker_peak_rss_mb": decode_features["worker_peak_rss_mb"],
    }
