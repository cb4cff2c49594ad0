"""`python -m bench.run`: run the measurements, print a markdown table each, write JSON results.

The harness is a list of sections. A section is a measurement (work folder and flags in, a JSON
result out) and a table (result in, markdown out, every row beside its target); adding one is
one entry in SECTIONS plus its flags and their full and quick sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.accuracy import accuracy_table, measure_accuracy
from bench.cluster import measure_cluster
from bench.faults import measure_crash_loop, measure_store_outage
from bench.fingerprint import SOURCES, fingerprint_table, measure_fingerprint
from bench.gateway import measure_progress_latency, measure_upload_memory
from bench.ingest import measure_ingest, measure_long_track_memory
from bench.loudness import loudness_table, measure_loudness
from bench.report import markdown_table, phase, verdict
from bench.scale import measure_scale, scale_table
from bench.search import measure_search, search_table
from bench.similarity import measure_similarity, similarity_table
from bench.web import measure_web, web_table
from schemas.settings import settings_from_env

RESULTS = Path(__file__).parent / "results"
# Sizes of a full run (10 min on the 2-core machine) and of a --quick one (1.5–3.5 min, by how
# busy the machine is); a flag given on the command line wins over both.
FULL = {
    "tracks": 20,
    "seconds": 180.0,
    "long_seconds": 600.0,
    "accuracy_pieces": 96,
    "accuracy_seconds": 30.0,
    "accuracy_synth_pieces": 48,
    "search_sizes": [1_000, 10_000, 50_000],
    "search_queries": 100,
    "search_budget_s": 60.0,
    "progress_tracks": 10,
    "upload_mb": 1000,
    "crash_tracks": 200,
    "crash_kills": 4,
    "outage_tracks": 40,
    "outage_s": 180.0,
    "cluster_tracks": 100,
    "fault_seconds": 5.0,
    "similarity_variants": 6,
    "similarity_seconds": 30.0,
    "scale_sizes": [10_000, 100_000],
    "scale_queries": 200,
    "fp_tracks": 500,
    "fp_seconds": 30.0,
    "fp_clips": 100,
    "fp_negatives": 100,
    "fp_size": 10_000,
    "web_loads": 20,
    "web_library": 10_000,
}
QUICK = FULL | {
    "tracks": 3,
    "seconds": 30.0,
    "long_seconds": 60.0,
    "accuracy_pieces": 48,
    "accuracy_synth_pieces": 24,
    "search_sizes": [1_000, 10_000],
    "search_queries": 30,
    "progress_tracks": 4,
    "upload_mb": 1000,
    "crash_tracks": 30,
    "crash_kills": 2,
    "outage_tracks": 8,
    "outage_s": 30.0,
    "cluster_tracks": 20,
    "similarity_variants": 3,
    "similarity_seconds": 15.0,
    "scale_sizes": [1_000, 5_000],
    "scale_queries": 50,
    "fp_tracks": 50,
    "fp_clips": 20,
    "fp_negatives": 20,
    "fp_size": 1_000,
    "web_loads": 5,
    "web_library": 1_000,
}


def _ingest_table(ingest: dict[str, Any]) -> str:
    rows = [
        ("ingest × realtime (2 cores, CLIP off)", f"{ingest['x_realtime']}×", "≥ 60× (goal 300×)"),
        ("ingest tracks/min", f"{ingest['tracks_per_min']}", "≥ 20 at 180 s/track"),
        ("ingest CPU use (all cores)", f"{ingest['cpu_utilisation']:.0%}", "—"),
        (
            "ingest × realtime by CPU time (all cores ours), models on",
            f"{ingest['x_realtime_cpu']}× ({ingest['cpu_s_per_audio_min']} CPU s per audio min)",
            f"≥ 200×: {verdict(ingest['x_realtime_cpu'] >= 200)}",
        ),
    ]
    for stage, p50 in ingest["stage_p50_s"].items():
        rows.append(
            (f"stage {stage} p50 / p95", f"{p50} s / {ingest['stage_p95_s'][stage]} s", "—")
        )
    rows.append(("pool worker peak RSS (ingest)", f"{ingest['pool_worker_peak_rss_mb']} MB", "—"))
    stages = ingest["decode_features"]
    formats = ", ".join(f"{k} {v} s" for k, v in stages["decode_cpu_s_by_format"].items())
    rows += [
        (
            "decode CPU per track, median (by format)",
            f"{stages['decode_cpu_s']} s ({formats})",
            "—",
        ),
        ("features CPU per track, median", f"{stages['features_cpu_s']} s", "—"),
        (
            f"decode + features × realtime on {stages['cores']} cores, by CPU time",
            f"{stages['x_realtime_cores']}×",
            f"≥ 400×: {verdict(stages['x_realtime_cores'] >= 400)}",
        ),
    ]
    return markdown_table(("measurement", "value", "target"), rows)


def _memory_table(memory: dict[str, Any]) -> str:
    rows = [
        (
            f"pool worker peak RSS, {memory['track_seconds'] / 60:.0f}-min track",
            f"{memory['pool_worker_peak_rss_mb']} MB",
            f"≤ 700 MB (models loaded): {verdict(memory['pool_worker_peak_rss_mb'] <= 700)}",
        ),
        (
            "peak RSS of the decode + features jobs alone (models off), same track",
            f"{memory['decode_features_worker_peak_rss_mb']} MB",
            f"≤ 600 MB: {verdict(memory['decode_features_worker_peak_rss_mb'] <= 600)}",
        ),
        ("main process peak RSS, same track", f"{memory['main_peak_rss_mb']} MB", "—"),
    ]
    return markdown_table(("measurement", "value", "target"), rows)


def _gateway_table(gateway: dict[str, Any]) -> str:
    progress, upload = gateway["progress"], gateway["upload"]
    rows = [
        (
            f"progress latency, stage finished → SSE client ({progress['events']} events)",
            f"p50 {progress['p50_ms']} ms / p95 {progress['p95_ms']} ms / max "
            f"{progress['max_ms']} ms",
            f"p95 ≤ 100 ms: {verdict(progress['p95_ms'] <= 100)}",
        ),
        (
            f"gateway RSS growth, {upload['size_mb']} MB streamed upload",
            f"{upload['rss_growth_mb']} MB ({upload['mb_per_s']} MB/s)",
            f"< 64 MB: {verdict(upload['rss_growth_mb'] < 64)}",
        ),
    ]
    return markdown_table(("measurement", "value", "target"), rows)


def _faults_table(faults: dict[str, Any]) -> str:
    rows = []
    loops = (
        ("crash loop (SIGKILL of up)", "kills"),
        ("catalog outage", "outages"),
        ("3-node cluster, stream leader killed", "leader kills"),
    )
    for name, fault in loops:
        if name not in faults:
            continue
        r = faults[name]
        rows.append(
            (
                name,
                str(r["ingested"]),
                f"{r['faults']} {fault}",
                str(r["lost"]),
                str(r["duplicated"]),
                str(r["stuck"]),
                f"{r['settle_s']} s",
                verdict(r["lost"] == r["duplicated"] == r["stuck"] == 0),
            )
        )
    header = ("loop", "ingested", "faults", "lost", "duplicated", "stuck", "settled in", "0/0/0")
    return markdown_table(header, rows)


async def _faults(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "crash loop (SIGKILL of up)": await measure_crash_loop(
            work, args.crash_tracks, args.crash_kills, args.fault_seconds, args.seed
        ),
        "catalog outage": await measure_store_outage(
            work, args.outage_tracks, args.outage_s, args.fault_seconds
        ),
        "3-node cluster, stream leader killed": await measure_cluster(
            work, args.cluster_tracks, args.fault_seconds
        ),
    }


async def _ingest(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return await measure_ingest(work, args.tracks, args.seconds)


async def _memory(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return await measure_long_track_memory(work, args.long_seconds)


async def _accuracy(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return measure_accuracy(
        work,
        args.accuracy_pieces,
        args.accuracy_seconds,
        args.seed,
        split=args.accuracy_split,
        synth_pieces=args.accuracy_synth_pieces,
    )


async def _loudness(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return measure_loudness(work, args.seed)


async def _search(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return await measure_search(
        work, args.search_sizes, args.search_queries, args.search_budget_s, args.seed
    )


async def _similarity(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    patches = settings_from_env().musicnn_patches
    return measure_similarity(args.similarity_variants, args.similarity_seconds, patches)


async def _scale(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return await measure_scale(
        work,
        args.scale_sizes,
        args.scale_queries,
        args.search_budget_s,
        seed=args.seed,
        catalog_max=args.scale_catalog_max,
    )


async def _gateway(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "progress": await measure_progress_latency(work, args.progress_tracks, 10.0),
        "upload": await measure_upload_memory(work, args.upload_mb * 1_000_000),
    }


async def _fingerprint(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return measure_fingerprint(
        work, tracks=args.fp_tracks, seconds=args.fp_seconds, clips=args.fp_clips,
        negatives=args.fp_negatives, size=args.fp_size, seed=args.seed, source=args.fp_source,
    )  # fmt: skip


async def _web(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return await measure_web(work, args.web_loads, args.web_library, seed=args.seed)


@dataclass(frozen=True)
class Section:
    measure: Callable[[Path, argparse.Namespace], Awaitable[dict[str, Any]]]
    table: Callable[[dict[str, Any]], str]


SECTIONS = {
    "ingest": Section(_ingest, _ingest_table),
    "memory": Section(_memory, _memory_table),
    "loudness": Section(_loudness, loudness_table),
    "accuracy": Section(_accuracy, accuracy_table),
    "search": Section(_search, search_table),
    "similarity": Section(_similarity, similarity_table),
    "gateway": Section(_gateway, _gateway_table),
    "faults": Section(_faults, _faults_table),
    "scale": Section(_scale, scale_table),
    "fingerprint": Section(_fingerprint, fingerprint_table),
    "web": Section(_web, web_table),
}


# the fault loops run only when asked for (`--sections faults`): they take tens of minutes
DEFAULT_SECTIONS = [name for name in SECTIONS if name != "faults"]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tonestream-bench-") as tmp:
        for name in args.sections:
            with phase(f"section {name}"):
                results[name] = await SECTIONS[name].measure(Path(tmp), args)
    return results


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _sections(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown sections {sorted(unknown)}; see --help")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--sections",
        type=_sections,
        default=DEFAULT_SECTIONS,
        help=f"comma-separated sections to run (default: {','.join(DEFAULT_SECTIONS)}; "
        "also: faults)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--tracks", type=int, help="tracks for ingest throughput")
    parser.add_argument("--seconds", type=float, help="length of each ingest track")
    parser.add_argument("--long-seconds", type=float, help="memory-probe track length")
    parser.add_argument(
        "--accuracy-pieces", type=int, help="labelled pieces (a multiple of 24 balances the keys)"
    )
    parser.add_argument("--accuracy-seconds", type=float, help="length of each labelled piece")
    parser.add_argument(
        "--accuracy-split",
        choices=("validation", "tuning"),
        default="validation",
        help="corpus split to measure (the analysis constants are fitted on tuning)",
    )
    parser.add_argument(
        "--accuracy-synth-pieces", type=int, help="pieces of the synth regression set (0: none)"
    )
    parser.add_argument(
        "--progress-tracks", type=int, help="tracks uploaded over HTTP for progress latency"
    )
    parser.add_argument("--upload-mb", type=int, help="size of the streamed upload (MB)")
    parser.add_argument("--search-sizes", type=_sizes, help="index sizes, e.g. 1000,10000,50000")
    parser.add_argument("--search-queries", type=int, help="timed queries per kind and size")
    parser.add_argument(
        "--search-budget-s",
        type=float,
        help="seconds of timed queries per kind and size after which a kind stops early",
    )
    parser.add_argument("--crash-tracks", type=int, help="tracks uploaded during the crash loop")
    parser.add_argument("--crash-kills", type=int, help="SIGKILLs of `tonestream up`")
    parser.add_argument("--outage-tracks", type=int, help="tracks of the catalog-outage loop")
    parser.add_argument("--outage-s", type=float, help="how long the catalog server is down")
    parser.add_argument("--cluster-tracks", type=int, help="tracks of the 3-node cluster loop")
    parser.add_argument("--fault-seconds", type=float, help="length of each fault-loop track")
    parser.add_argument(
        "--similarity-variants", type=int, help="renders per style in the similarity corpus"
    )
    parser.add_argument("--similarity-seconds", type=float, help="length of each style render")
    parser.add_argument(
        "--scale-sizes", type=_sizes, help="one user's library sizes, e.g. 10000,100000"
    )
    parser.add_argument("--scale-queries", type=int, help="timed queries per kind and size")
    parser.add_argument(
        "--scale-catalog-max",
        type=int,
        help="catalog documents at most (default: the largest scale size)",
    )
    parser.add_argument("--fp-tracks", type=int, help="generated library tracks to fingerprint")
    parser.add_argument("--fp-seconds", type=float, help="length of each library track")
    parser.add_argument("--fp-clips", type=int, help="degraded clips per condition")
    parser.add_argument("--fp-negatives", type=int, help="clips of tracks not in the library")
    parser.add_argument("--fp-size", type=int, help="index size (tracks) for identify latency")
    parser.add_argument("--web-loads", type=int, help="cold first loads of the web app timed")
    parser.add_argument("--web-library", type=int, help="library size for the web app's pages")
    parser.add_argument(
        "--fp-source",
        choices=SOURCES,
        default="midi",
        help="fingerprint clips from MIDI renders (validation) or tests.medley (tuning)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    return parser


def main() -> None:
    args = _parser().parse_args()
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    results = asyncio.run(_run(args))
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
    }
    results["args"] = dict(vars(args))
    results["wall_s"] = round(time.perf_counter() - began, 1)
    for name in args.sections:
        print(f"\n### {name}\n\n{SECTIONS[name].table(results[name])}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    machine = results["machine"]
    print(
        f"\nwall time {results['wall_s']} s; 1-min load average {machine['load_avg_1min_before']}"
        f" before, {machine['load_avg_1min_after']} after, on {machine['cpus']} cores"
        f"\nresults: {out}"
    )


if __name__ == "__main__":
    main()
