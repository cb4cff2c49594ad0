"""The fingerprint core on its own: hashes, their stability and the offset vote."""

from __future__ import annotations

import numpy as np
from scipy import signal

from handlers.fingerprint import core
from tests.medley import render_medley

RATE = 22050


def _postings(
    tracks: list[tuple[core.Hashes, core.Times]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hashes = np.concatenate([h for h, _ in tracks])
    numbers = np.concatenate([np.full(h.size, i) for i, (h, _) in enumerate(tracks)])
    times = np.concatenate([t for _, t in tracks])
    return hashes, numbers, times


def test_hashes_are_time_ordered_and_within_their_bits() -> None:
    hashes, times = core.fingerprint(render_medley(1, 20.0, RATE), RATE)
    assert hashes.size > 20 * 20  # tens of landmarks a second
    assert np.all(np.diff(times) >= 0)
    assert int(hashes.max()) < 1 << core.HASH_BITS
    assert int(times.max()) <= round(20.0 / core.FRAME_S)


def test_the_same_audio_at_another_rate_gives_the_same_hashes() -> None:
    audio = render_medley(2, 10.0, RATE)
    a = core.fingerprint(audio, RATE)
    # 11.025 kHz: the core's own rate (frames of N_FFT) vs the analysis rate (frames twice as long)
    b = core.fingerprint(signal.resample_poly(audio, 1, 2).astype(np.float32), RATE // 2)
    shared = np.intersect1d(a[0], b[0]).size
    assert shared > 0.5 * min(a[0].size, b[0].size)


def test_a_clip_votes_for_its_track_and_offset() -> None:
    library = [core.fingerprint(render_medley(seed, 20.0, RATE), RATE) for seed in (3, 4, 5)]
    audio = render_medley(4, 20.0, RATE)
    start = 7.25
    clip = audio[round(start * RATE) : round((start + 6.0) * RATE)]
    matches = core.rank(*core.fingerprint(clip, RATE), *_postings(library))
    assert matches[0].track == 1
    assert abs(matches[0].offset_s - start) <= 0.1
    assert all(m.track == 1 for m in matches)


def test_no_postings_or_no_hashes_is_no_match() -> None:
    empty = np.zeros(0, dtype=np.uint32)
    none = np.zeros(0, dtype=np.int32)
    hashes, times = core.fingerprint(render_medley(6, 5.0, RATE), RATE)
    assert core.rank(hashes, times, empty, none.astype(np.int64), none) == []
    assert core.fingerprint(np.zeros(100, dtype=np.float32), RATE)[0].size == 0
