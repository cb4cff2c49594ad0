"""The benchmark harness in its smallest configuration: every metric is produced and sane
(not that it meets a target — speed is measured by `just bench`, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.accuracy import (
    MAX_BPM,
    MIN_BPM,
    OCTAVE_FACTORS,
    accuracy_table,
    key_score,
    measure_accuracy,
    tempo_correct,
)
from bench.gateway import measure_progress_latency, measure_upload_memory
from bench.ingest import measure_ingest
from bench.scale import KINDS as SCALE_KINDS
from bench.scale import PAGE, measure_scale, scale_table
from bench.search import KINDS, K, measure_search, search_table
from streams.names import CHAIN_STAGES, Stage


async def test_ingest_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    result = await measure_ingest(tmp_path, tracks=2, seconds=8.0)

    assert result["tracks"] == 2
    assert result["wall_s"] > 0
    assert abs(result["x_realtime"] - 2 * 8.0 / result["wall_s"]) <= 0.05 * result["x_realtime"]
    # the fingerprint stage follows indexing: it may or may not have finished yet
    assert {str(s) for s in CHAIN_STAGES} <= set(result["stage_p50_s"]) <= {str(s) for s in Stage}
    for stage, p50 in result["stage_p50_s"].items():
        assert 0 <= p50 <= result["stage_p95_s"][stage] < result["wall_s"]
    assert result["peak_rss_mb"]["main"] > 50
    assert 50 < result["pool_worker_peak_rss_mb"] < 4096
    assert 0 < result["cpu_utilisation"] <= 1.0
    stages = result["decode_features"]  # CPU time of the two jobs, in a process of their own
    assert stages["decode_cpu_s"] > 0
    assert stages["features_cpu_s"] > 0
    assert set(stages["decode_cpu_s_by_format"]) <= {"FLAC", "WAV"}
    assert 50 < stages["worker_peak_rss_mb"] < 4096


@pytest.mark.parametrize(
    ("estimate", "truth", "score"),
    [
        (("C", "major"), ("C", "major"), 1.0),
        (("G", "major"), ("C", "major"), 0.5),  # fifth above
        (("F", "minor"), ("A#", "minor"), 0.5),  # fifth below
        (("A", "minor"), ("C", "major"), 0.3),  # relative minor
        (("D#", "major"), ("C", "minor"), 0.3),  # relative major
        (("E", "minor"), ("E", "major"), 0.2),  # parallel
        (("G", "minor"), ("C", "major"), 0.0),
        (("D", "major"), ("C", "major"), 0.0),
    ],
)
def test_key_score_follows_mirex(
    estimate: tuple[str, str], truth: tuple[str, str], score: float
) -> None:
    assert key_score(*estimate, *truth) == score


def test_tempo_accuracy_tolerance_and_octaves() -> None:
    assert tempo_correct(124.7, 120.0)
    assert tempo_correct(115.3, 120.0)
    assert not tempo_correct(125.0, 120.0)
    assert not tempo_correct(240.0, 120.0)
    for factor in (2.0, 0.5, 3.0, 1 / 3):
        assert tempo_correct(120.0 * factor * 1.03, 120.0, OCTAVE_FACTORS)
    assert not tempo_correct(180.0, 120.0, OCTAVE_FACTORS)  # ×1.5 is not an octave error


def test_accuracy_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    # The tuning split: its soundfont ships with pretty-midi, so it exists wherever tests run.
    result = measure_accuracy(
        tmp_path, pieces=4, seconds=8.0, split="tuning", synth_pieces=3, cache=tmp_path / "cache"
    )

    assert result["split"] == "tuning"
    assert "TimGM6mb.sf2" in result["soundfonts"]
    for name, size, formats in (
        ("corpus", 4, {"wav", "flac", "mp3", "ogg"}),
        ("synth", 3, {"wav", "flac", "ogg"}),
    ):
        run = result[name]
        assert run["pieces"] == len(run["details"]) == size
        pieces = run["details"]
        assert {piece["path"].rsplit(".", 1)[1] for piece in pieces} <= formats
        assert len({(piece["key"], piece["mode"]) for piece in pieces}) == size
        assert all(MIN_BPM <= piece["bpm"] <= MAX_BPM for piece in pieces)
        assert set(run["systems"]) == {"tonestream", "librosa"}
        for system_name, system in run["systems"].items():
            for metric in ("tempo_acc1", "tempo_acc2", "key_weighted", "key_exact"):
                assert 0.0 <= system[metric] <= 1.0, (name, system_name, metric)
            assert system["tempo_acc1"] <= system["tempo_acc2"]
            assert system["key_exact"] <= system["key_weighted"]
            assert 0 < system["s_per_track_median"] < 30
            assert system["x_realtime"] == pytest.approx(8.0 / system["s_per_track_mean"])
            assert all(p[system_name]["bpm"] > 0 and p[system_name]["seconds"] > 0 for p in pieces)
    table = accuracy_table(result)
    assert "librosa baseline" in table
    assert "corpus, tuning split" in table
    assert "synth regression set" in table


async def test_search_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    result = await measure_search(tmp_path, sizes=[300, 150], queries=8)

    assert list(result["sizes"]) == ["150", "300"]
    for size, run in result["sizes"].items():
        assert run["count"] == int(size)
        assert run["upsert_ms"] > 0
        for kind in KINDS:
            stats = run[kind]
            assert stats["queries"] == 8
            assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] < 60_000
            assert 0 < stats["mean_hits"] <= K
        for kind in ("similar", "text", "fused"):
            assert run[kind]["mean_hits"] == K
        assert run["similar"]["query_track_returned"] == 0
        assert run["filtered"]["query_track_returned"] == 0
    assert "not measured in this run" in search_table(result)


async def test_scale_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    result = await measure_scale(tmp_path, sizes=[240, 120], queries=5)

    assert result["backend"] == "Qdrant Edge (owning process)"
    assert list(result["sizes"]) == ["120", "240"]
    for size, run in result["sizes"].items():
        assert run["count"] == int(size)
        assert run["build"]["writes_s"] > 0
        assert run["build"]["index_build_s"] >= 0
        for kind in SCALE_KINDS:
            stats = run[kind]
            assert stats["queries"] == 5, kind
            assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] < 60_000, kind
        for kind in ("similar", "fused"):
            assert run[kind]["mean_results"] == K, kind
        assert 0 < run["filtered"]["mean_results"] <= K
        assert run["text"]["mean_results"] > 0
        assert 0 <= run["list"]["mean_results"] <= PAGE
        assert 0 < run["paging"]["mean_results"] <= PAGE
        assert run["burst"]["searches"] == 100
        assert run["burst"]["ticks"] >= 1
        assert run["rss_mb"]["edge"] > 10
        assert run["sse"]["ok"] == run["sse"]["searches"] >= 100
        assert run["sse"]["events"] > 0
        assert 0 < run["sse"]["max_gap_ms"] < 1000 * run["sse"]["burst_s"]
    assert "event-loop stall during 100 concurrent searches" in scale_table(result)
    assert "SSE progress gap (gateway)" in scale_table(result)


async def test_gateway_benchmark_produces_sane_metrics(tmp_path: Path) -> None:
    progress = await measure_progress_latency(tmp_path, tracks=1, seconds=4.0)
    assert progress["events"] == len(Stage)
    assert 0 < progress["p50_ms"] <= progress["p95_ms"] <= progress["max_ms"] < 10_000
    upload = await measure_upload_memory(tmp_path, size_bytes=20_000_000)
    assert upload["size_mb"] == 20
    assert 0 <= upload["rss_growth_mb"] < 1_000
    assert upload["mb_per_s"] > 0
