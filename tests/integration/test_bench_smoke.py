"""The benchmark harness in its smallest configuration: every metric is produced and sane
(not that it meets a target — speed is measured by `just bench`, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

from bench.ingest import measure_ingest
from streams.names import Stage


async def test_ingest_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    result = await measure_ingest(tmp_path, tracks=2, seconds=8.0)

    assert result["tracks"] == 2
    assert result["wall_s"] > 0
    assert abs(result["x_realtime"] - 2 * 8.0 / result["wall_s"]) <= 0.05 * result["x_realtime"]
    assert set(result["stage_p50_s"]) == {str(stage) for stage in Stage}
    for stage, p50 in result["stage_p50_s"].items():
        assert 0 <= p50 <= result["stage_p95_s"][stage] < result["wall_s"]
    assert result["peak_rss_mb"]["main"] > 50
    assert 50 < result["pool_worker_peak_rss_mb"] < 4096
    assert 0 < result["cpu_utilisation"] <= 1.0
