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
    assert core.fingerprint_clip(np.zeros(100, dtype=np.float32), RATE)[0].size == 0


def test_a_clip_off_the_frame_grid_keeps_its_hashes_on_shifted_grids() -> None:
    audio = render_medley(7, 20.0, RATE)
    library = core.fingerprint(audio, RATE)
    start = round(6.0 * RATE) + core.HOP  # half a 22.05-kHz frame off the library's grid
    clip = audio[start : start + 5 * RATE]
    first = round(start / (2 * core.HOP))  # the library frame the clip starts in

    def shared(query: tuple[core.Hashes, core.Times]) -> int:
        ref = set(zip(library[0].tolist(), (library[1] - first).tolist(), strict=True))
        return sum(
            (h, t + d) in ref
            for h, t in zip(query[0].tolist(), query[1].tolist(), strict=True)
            for d in (-1, 0, 1)
        )

    single, pooled = core.fingerprint(clip, RATE), core.fingerprint_clip(clip, RATE)
    assert np.all(np.diff(pooled[1]) >= 0)
    assert set(single[0].tolist()) <= set(pooled[0].tolist())
    assert shared(pooled) > 1.3 * shared(single)


def _synthetic_clip(rng: np.random.Generator) -> tuple[core.Hashes, core.Times]:
    """600 landmarks of a 10-s clip, one per distinct anchor peak, spread over its frames."""
    peaks = rng.choice(430 * 256, size=600, replace=False)
    times, bins = np.sort(peaks // 256).astype(np.int32), (peaks % 256).astype(np.uint32)
    rest = rng.integers(0, 1 << core._ANCHOR_SHIFT, size=600).astype(np.uint32)
    return ((bins << core._ANCHOR_SHIFT) | rest).astype(np.uint32), times


def _sharing(
    clip: tuple[core.Hashes, core.Times], track: int, picks: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hashes, times = clip
    return hashes[picks], np.full(picks.size, track), times[picks] + offset


def _vote(
    clip: tuple[core.Hashes, core.Times],
    parts: list[tuple[np.ndarray, ...]],
    min_ratio: float = core.MIN_RATIO,
    min_coverage: float = core.MIN_COVERAGE,
    min_lead: float = core.MIN_LEAD,
) -> list[core.Match]:
    h, k, t = (np.concatenate(column) for column in zip(*parts, strict=True))
    hashes, times = clip
    return core.rank(
        hashes,
        times,
        h.astype(np.uint32),
        k.astype(np.int64),
        t.astype(np.int32),
        min_ratio=min_ratio,
        min_coverage=min_coverage,
        min_lead=min_lead,
    )


def test_a_match_must_stand_out_of_the_clips_chance_level() -> None:
    rng = np.random.default_rng(5)
    clip = _synthetic_clip(rng)
    # twelve tracks share a passage-worth of landmarks each (20, on one offset): the chance level
    others = [_sharing(clip, t, rng.choice(600, 20, replace=False), 900) for t in range(1, 13)]
    for shared, found in ((50, False), (75, True)):
        true = _sharing(clip, 0, rng.choice(600, shared, replace=False), 1234)
        matches = _vote(clip, [true, *others])
        assert bool(matches) is found, shared
    assert matches[0].track == 0
    assert abs(matches[0].offset_s - 1234 * core.FRAME_S) < 0.01
    assert len(matches) == 1  # the passage-sharing tracks stay below the bar
    assert _vote(clip, [true, *others], min_ratio=4.0) == []  # 75 < 4 × 20


def test_behind_a_best_track_that_fails_nothing_is_reported() -> None:
    rng = np.random.default_rng(6)
    clip = _synthetic_clip(rng)
    others = [_sharing(clip, t, rng.choice(600, 5, replace=False), 300) for t in range(2, 14)]
    # track 0 agrees 100 times, all within the clip's first two seconds: a shared passage
    passage = _sharing(clip, 0, np.flatnonzero(clip[1] < 86)[:100], 500)
    spread = _sharing(clip, 1, rng.choice(600, 80, replace=False), 700)
    assert passage[0].size == 100
    assert _vote(clip, [passage, spread, *others]) == []
    assert [m.track for m in _vote(clip, [spread, *others])] == [1]
    assert _vote(clip, [passage, spread, *others], min_coverage=0.0)[0].track == 0


def test_a_loop_shared_at_every_bar_is_no_match_but_a_recording_leads_its_repeats() -> None:
    rng = np.random.default_rng(7)
    clip = _synthetic_clip(rng)
    others = [_sharing(clip, t, rng.choice(600, 10, replace=False), 300) for t in range(1, 13)]
    bar = 86  # two seconds: within the span where a loop's repeats are looked for
    assert core.RIVAL_FRAMES < bar <= core.RIVAL_MAX_FRAMES

    def track_0(best: int, again: int, apart: int) -> list[tuple[np.ndarray, ...]]:
        picks = rng.permutation(600)
        return [
            _sharing(clip, 0, picks[:best], 1000),
            _sharing(clip, 0, picks[best : best + again], 1000 + apart),
        ]

    # the same drum loop in another piece: nearly as many hits one bar later
    assert _vote(clip, [*track_0(80, 70, bar), *others]) == []
    assert _vote(clip, [*track_0(80, 70, bar), *others], min_lead=1.0)[0].track == 0
    # the recording itself: its offset leads the repeat by MIN_LEAD ...
    leading = _vote(clip, [*track_0(100, 70, bar), *others])[0]
    assert abs(leading.offset_s - 1000 * core.FRAME_S) < 0.01
    # ... or holds a REPEAT_SHARE of the clip's peaks where the passage repeats strictly
    assert _vote(clip, [*track_0(130, 120, bar), *others])[0].track == 0
    # agreement further away than a bar is another passage, no rival
    assert _vote(clip, [*track_0(80, 70, core.RIVAL_MAX_FRAMES + 20), *others])[0].track == 0


def test_a_tracks_offset_is_the_one_most_of_its_peaks_agree_on_not_the_most_pairs() -> None:
    rng = np.random.default_rng(8)
    clip = _synthetic_clip(rng)
    others = [_sharing(clip, t, rng.choice(600, 10, replace=False), 300) for t in range(1, 13)]
    picks = rng.permutation(600)
    recording = _sharing(clip, 0, picks[:100], 1000)
    # a passage one bar later that shares fewer peaks, each of them in two landmarks: more pairs
    echo = _sharing(clip, 0, np.repeat(picks[100:160], 2), 1086)
    assert echo[0].size > recording[0].size
    found = _vote(clip, [recording, echo, *others])
    assert [m.track for m in found] == [0]
    assert abs(found[0].offset_s - 1000 * core.FRAME_S) < 0.01
