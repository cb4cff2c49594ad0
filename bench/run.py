"""`python -m bench.run`: run the measurements, print a markdown table, write JSON results."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import measure_ingest, measure_long_track_memory

RESULTS = Path(__file__).parent / "results"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    ingest, memory = results["ingest"], results["memory"]
    rows = [
        ("ingest × realtime (2 cores, CLIP off)", f"{ingest['x_realtime']}×", "≥ 60× (goal 300×)"),
        ("ingest tracks/min", f"{ingest['tracks_per_min']}", "≥ 20 at 180 s/track"),
        ("ingest CPU use (all cores)", f"{ingest['cpu_utilisation']:.0%}", "—"),
    ]
    for stage, p50 in ingest["stage_p50_s"].items():
        rows.append(
            (f"stage {stage} p50 / p95", f"{p50} s / {ingest['stage_p95_s'][stage]} s", "—")
        )
    rows += [
        ("pool worker peak RSS (ingest)", f"{ingest['pool_worker_peak_rss_mb']} MB", "—"),
        (
            f"pool worker peak RSS, {memory['track_seconds'] / 60:.0f}-min track",
            f"{memory['pool_worker_peak_rss_mb']} MB",
            "≤ 600 MB",
        ),
        ("main process peak RSS, same track", f"{memory['main_peak_rss_mb']} MB", "—"),
    ]
    return rows


def _table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| measurement | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tonestream-bench-") as tmp:
        work = Path(tmp)
        print(f"ingest: {args.tracks} tracks of {args.seconds:.0f} s…", flush=True)
        ingest = await measure_ingest(work, args.tracks, args.seconds)
        print(f"memory: one {args.long_seconds:.0f} s track…", flush=True)
        memory = await measure_long_track_memory(work, args.long_seconds)
    return {"ingest": ingest, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--tracks", type=int, default=20, help="tracks for ingest throughput")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each track")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="memory-probe track")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.tracks, args.seconds, args.long_seconds = 3, 30.0, 60.0
    results = asyncio.run(_run(args))
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    print(_table(_rows(results)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
