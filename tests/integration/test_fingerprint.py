"""Fingerprints end to end through the real index (Qdrant Edge on disk): generated recordings,
clips cut at random offsets, room noise, resampled and re-encoded by real encoders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import fingerprint_table, measure_fingerprint
from handlers.fingerprint import core
from stores.fingerprints import FingerprintIndex
from tests.medley import Encoding, reencoded, render_medley, with_noise

RATE = 22050
SECONDS = 30.0
TRACKS = 8


@pytest.fixture(scope="module")
def library() -> list[np.ndarray]:
    return [render_medley(seed, SECONDS, RATE) for seed in range(500, 500 + TRACKS)]


@pytest.fixture(scope="module")
def index(
    library: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FingerprintIndex]:
    fingerprints = FingerprintIndex(tmp_path_factory.mktemp("fp") / "index")
    for i, audio in enumerate(library):
        fingerprints.add("alice", f"track-{i}", *core.fingerprint(audio, RATE))
    fingerprints.flush()
    yield fingerprints
    fingerprints.close()


@pytest.mark.parametrize(
    "condition",  # clip seconds, SNR in dB, encode
    [(10.0, 10.0, Encoding("mp3", 64_000, 44_100)), (20.0, 0.0, Encoding("opus", 48_000, 48_000))],
    ids=["10s-10dB-mp3", "20s-0dB-opus"],
)
def test_degraded_clips_are_found_at_their_offset(
    library: list[np.ndarray],
    index: FingerprintIndex,
    tmp_path: Path,
    condition: tuple[float, float, Encoding],
) -> None:
    seconds, snr_db, encoding = condition
    rng = np.random.default_rng([int(snr_db), 3])
    for track in range(0, TRACKS, 2):
        start = float(rng.uniform(0.0, SECONDS - seconds))
        piece = library[track][round(start * RATE) : round((start + seconds) * RATE)]
        clip = reencoded(with_noise(piece, snr_db, rng), RATE, encoding, tmp_path)
        found = index.identify("alice", *core.fingerprint(clip, RATE))
        assert found, f"track {track} from {start:.2f} s not found"
        assert found[0].track_id == f"track-{track}"
        assert abs(found[0].offset_s - start) <= 0.1, (found[0].offset_s, start)
        assert 0.0 < found[0].confidence <= 1.0


def test_music_not_in_the_library_matches_nothing(index: FingerprintIndex) -> None:
    rng = np.random.default_rng(9)
    for seed in range(900, 906):
        clip = with_noise(render_medley(seed, 10.0, RATE), 10.0, rng)
        assert index.identify("alice", *core.fingerprint(clip, RATE)) == []


def test_another_users_library_is_not_searched(
    library: list[np.ndarray], index: FingerprintIndex
) -> None:
    clip = library[1][5 * RATE : 15 * RATE]
    assert index.identify("alice", *core.fingerprint(clip, RATE))[0].track_id == "track-1"
    assert index.identify("bob", *core.fingerprint(clip, RATE)) == []


def test_removed_fingerprints_are_gone_and_a_re_add_replaces(
    library: list[np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "index"
    fingerprints = FingerprintIndex(path)
    hashes, times = core.fingerprint(library[2], RATE)
    fingerprints.add("alice", "t", hashes, times)
    fingerprints.add("alice", "t", hashes, times)  # a replay: still one copy
    clip = core.fingerprint(library[2][4 * RATE : 14 * RATE], RATE)
    first = fingerprints.identify("alice", *clip)
    assert [m.track_id for m in first] == ["t"]
    fingerprints.close()
    fingerprints = FingerprintIndex(path)  # reopened from disk
    assert fingerprints.identify("alice", *clip) == first
    fingerprints.remove("alice", "t")
    assert fingerprints.identify("alice", *clip) == []
    fingerprints.close()


def test_one_recording_in_two_encodes_and_trimmed_is_one_duplicate_group(
    library: list[np.ndarray], tmp_path: Path
) -> None:
    recording = render_medley(77, 40.0, RATE)
    versions = {
        "mp3-128": reencoded(recording, RATE, Encoding("mp3", 128_000, 44_100), tmp_path),
        "opus-48": reencoded(recording, RATE, Encoding("opus", 48_000, 48_000), tmp_path),
        "trimmed": recording[round(3.3 * RATE) : round(36.0 * RATE)],
    }
    fingerprints = FingerprintIndex(tmp_path / "index")
    prints = {name: core.fingerprint(audio, RATE) for name, audio in versions.items()}
    prints["other"] = core.fingerprint(library[0], RATE)
    for name, (hashes, times) in prints.items():
        fingerprints.add("alice", name, hashes, times)
    for name in versions:
        group = fingerprints.duplicates("alice", name, *prints[name])
        assert group == sorted(set(versions) - {name})
    assert fingerprints.duplicates("alice", "other", *prints["other"]) == []
    fingerprints.close()


def test_bench_section_produces_sane_metrics(tmp_path: Path) -> None:
    result = measure_fingerprint(tmp_path, tracks=4, seconds=20.0, clips=2, negatives=2, size=12)
    assert result["tracks"] == 4
    assert result["size_tracks"] == 12
    assert result["x_realtime_per_core"] > 0
    assert result["hashes_per_s"] > 10
    assert result["index_mb_per_hour"] > 0
    for scores in result["conditions"].values():
        assert 0 <= scores["top1_offset_within_0_1s"] <= scores["top1"] <= 1
        assert 0 < scores["p50_ms_at_size"] <= scores["p95_ms_at_size"]
    assert 0 <= result["negatives"]["false_matches"] <= 2
    assert "false matches" in fingerprint_table(result)
