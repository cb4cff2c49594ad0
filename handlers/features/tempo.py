"""Tempo and onset rate from the log-mel spectral-flux onset envelope.

Tempo comes from a comb tempogram: for each candidate beat period the onset envelope is folded
over ~10 s windows, and the period's salience is how strongly onsets pile up at one phase
(peak minus median of the folded profile, in units of the window's spread, averaged over
windows). Folding at a slightly wrong period drifts the phase and smears the pile, so the peak is
sharp and is refined below one frame. Salience never drops when the period is doubled (every
pulse of a level recurs at the slower levels), so the metrical level is chosen explicitly: a
broad prior around 120 BPM picks the starting candidate, and among its related levels (×2, ×3,
×3/2 and their inverses) within MIN_BPM..MAX_BPM a log-linear model picks the tactus. For each
level it reads, in the whole envelope and in a low (kick, bass), a middle (snare, chords) and a
high band (hats, cymbals): the salience, how it changes at half and at double the tempo (at
double it halves unless pulses between the level's beats are as strong as the beats), and the
off-beat share; the salience of chord changes (harmonic novelty) at two, three and
four beats (chords change at bar lines); and a log-normal tempo prior. Its weights
(_LEVEL_WEIGHTS) were fitted by `python -m bench.fit` on the TUNING split of the independent
corpus (bench/corpus.py: randomised grooves of each family) and are never fitted on its
VALIDATION split. The confidence compares the beat's salience with the best that the same
envelope reaches once its periodicity is shuffled away.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.ndimage

from handlers.features.dsp import mel_centres

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

MIN_BPM = 50.0  # the beat is reported within [MIN_BPM, MAX_BPM]
MAX_BPM = 200.0
_SEARCH_MIN_BPM = 40.0
_SEARCH_MAX_BPM = 250.0
_PRIOR_BPM = 120.0
_PRIOR_OCTAVES = 1.0
_GRID_STEP = 0.005  # relative spacing of the coarse BPM grid
_LEVEL_SPAN = 0.02  # ± relative span in which a related level's peak is looked for
_REFINE_SPAN = 0.01  # ± relative span of the fine search around the chosen coarse peak
_REFINE_STEP = 0.0005
_WINDOW_S = 10.0
_MIN_S = 2.0  # shorter envelopes cannot show two beats at MIN_BPM
_SHUFFLE_PIECE_S = 0.1
_CHANCE_GRID_STRIDE = 4  # the chance level is taken over every 4th coarse candidate
# Weights of the level features (level_features), divided by each feature's spread over the
# fitting set; fitted by `python -m bench.fit` (conditional logit over the related levels, TUNING
# split).
_LEVEL_WEIGHTS = (
    *(1.09, -1.812, -2.857, -1.254),  # whole envelope: salience, at half, at double, off-beats
    *(-1.504, -2.493, 2.417, -0.7646),  # low band
    *(4.967, 2.662, 0.5209, 1.404),  # middle band
    *(7.609, 7.235, 1.754, 0.5924),  # high band
    *(-5.525, 2.02, 12.12),  # chord changes every 2, 3, 4 beats
    *(6.645, -2.126),  # x, x²
)
_LEVEL_CENTRE_BPM = 100.0
_SALIENCE_FLOOR = 1e-3
_OFFBEAT_FLOOR = 0.05
_LOW_BAND_HZ = (0.0, 250.0)  # kick drum and bass
_MID_BAND_HZ = (250.0, 3000.0)  # snare body, chords, melody
_HIGH_BAND_HZ = (3000.0, 20000.0)  # hats, cymbals, snare noise
_LEVEL_FACTORS = (1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0, 4.0)
_HARMONY_BEATS = (2, 3, 4)  # bar lengths in beats at which chord changes are read
_NOVELTY_FRAMES = 4  # chroma frames averaged on each side of a harmonic-novelty point
_PEAK_HALF_WIDTH_S = 0.05  # onset peaks must be the maximum within ±50 ms
_PEAK_MEAN_HALF_WIDTH_S = 0.25
_PEAK_DELTA = 0.07  # … and exceed the local mean by 7 % of the envelope's maximum


def onset_envelope(mel_db: F32) -> F32:
    """Mean positive frame-to-frame rise of the log-mel spectrum (frame 0 is 0)."""
    flux = np.zeros(mel_db.shape[0], dtype=np.float32)
    if mel_db.shape[0] > 1:
        rise = np.maximum(np.diff(mel_db, axis=0), 0.0)
        flux[1:] = rise.mean(axis=1)
    return flux


def onset_rate(envelope: F32, frame_rate: float, duration_s: float) -> float:
    """Onsets per second: local maxima of the envelope standing clearly above their surroundings."""
    peak = float(envelope.max(initial=0.0))
    if peak <= 0 or duration_s <= 0:
        return 0.0
    normalised = envelope / peak
    half = max(1, round(_PEAK_HALF_WIDTH_S * frame_rate))
    local_max = scipy.ndimage.maximum_filter1d(normalised, 2 * half + 1, mode="constant")
    mean_size = 2 * max(1, round(_PEAK_MEAN_HALF_WIDTH_S * frame_rate)) + 1
    local_mean = scipy.ndimage.uniform_filter1d(normalised, mean_size, mode="constant")
    peaks = (normalised == local_max) & (normalised >= local_mean + _PEAK_DELTA)
    return float(np.count_nonzero(peaks)) / duration_s


def band_envelopes(mel_db: F32, sample_rate: int) -> tuple[F32, F32, F32]:
    """Onset envelopes of the low, middle and high band of a log-mel spectrum (onset_envelope)."""
    centres = mel_centres(sample_rate, mel_db.shape[1])
    low, mid, high = (
        onset_envelope(mel_db[:, (centres >= lo) & (centres < hi)])
        for lo, hi in (_LOW_BAND_HZ, _MID_BAND_HZ, _HIGH_BAND_HZ)
    )
    return low, mid, high


def harmonic_novelty(chroma: F32) -> F32:
    """How much the chroma of the next _NOVELTY_FRAMES frames differs from that of the previous
    ones (1 − cosine of their means) at every frame: peaks where the chords change."""
    norms = np.linalg.norm(chroma, axis=1, keepdims=True)
    unit = chroma / np.maximum(norms, 1e-9)
    width, frames = _NOVELTY_FRAMES, chroma.shape[0]
    novelty = np.zeros(frames, dtype=np.float32)
    if frames <= 2 * width:
        return novelty
    sums = np.vstack([np.zeros((1, unit.shape[1])), np.cumsum(unit, axis=0, dtype=np.float64)])
    at = np.arange(width, frames - width)
    before, after = sums[at] - sums[at - width], sums[at + width] - sums[at]
    lengths = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    novelty[at] = 1.0 - (before * after).sum(axis=1) / np.maximum(lengths, 1e-9)
    return novelty


def estimate_tempo(
    envelope: F32,
    frame_rate: float,
    bands: tuple[F32, F32, F32] | None = None,
    novelty: F32 | None = None,
) -> tuple[float, float]:
    """(BPM, confidence in [0, 1]); (0, 0) when the envelope has no periodicity to measure.

    `bands` are the low, middle and high band envelopes (band_envelopes) and `novelty` the
    harmonic novelty (harmonic_novelty) on the same frames; without them the level is chosen
    from what is given.
    """
    comb = _Comb(envelope, frame_rate)
    if not comb.usable:
        return 0.0, 0.0
    grid = _geometric_grid(_SEARCH_MIN_BPM, _SEARCH_MAX_BPM, _GRID_STEP)
    levels = candidate_levels(grid, comb.salience_many(grid))
    features = level_features(level_combs(comb, bands, novelty), levels)
    level = levels[int(np.argmax(features @ np.asarray(_LEVEL_WEIGHTS)))]
    beat_bpm, beat_salience = comb.refine(level)
    # chance gets the same fine search around the level that the beat got
    chance = comb.chance(np.concatenate([grid[::_CHANCE_GRID_STRIDE], _refine_grid(level)]))
    # The share of the beat's salience (as energy) that chance does not explain.
    confidence = 0.0 if beat_salience <= 0 else 1.0 - (chance / beat_salience) ** 2
    return beat_bpm, float(np.clip(confidence, 0.0, 1.0))


def candidate_levels(grid: F64, salience: F64) -> list[float]:
    """The related metrical levels of the prior-weighted strongest period (coarse-grid peaks)."""
    prior = np.exp(-0.5 * (np.log2(grid / _PRIOR_BPM) / _PRIOR_OCTAVES) ** 2)
    start = float(grid[np.argmax(salience * prior)])
    return [_peak_near(grid, salience, bpm)[0] for bpm in _related(start)]


def level_combs(
    comb: _Comb, bands: tuple[F32, F32, F32] | None, novelty: F32 | None
) -> list[_Comb | None]:
    """The combs the level model reads: whole envelope, low, middle, high band, harmony."""
    others = [*(bands or (None, None, None)), novelty]
    return [comb, *(None if e is None else _Comb(e, comb.frame_rate) for e in others)]


def _log_salience(comb: _Comb | None, bpm: float) -> float:
    if comb is None or not comb.usable:
        return float(np.log(_SALIENCE_FLOOR))
    return float(np.log(max(comb.salience(bpm), _SALIENCE_FLOOR)))


def level_features(combs: list[_Comb | None], levels: list[float]) -> F64:
    """(levels, 21) inputs of the level model: for the whole envelope and each band, the log
    salience at the level, its change at half and at double the tempo, and the log off-beat
    share; the log salience of chord changes every 2, 3 and 4 beats; x and x², x being the
    level in octaves from _LEVEL_CENTRE_BPM.

    A missing or flat envelope counts as the salience floor and no off-beats at every level, so
    it cannot favour one.
    """
    *rhythm, harmony = combs
    rows = []
    for bpm in levels:
        row: list[float] = []
        for comb in rhythm:
            at = _log_salience(comb, bpm)
            offbeat = comb.offbeat(bpm) if comb is not None and comb.usable else 0.0
            row += [
                at,
                _log_salience(comb, bpm / 2) - at,
                _log_salience(comb, bpm * 2) - at,
                float(np.log(offbeat + _OFFBEAT_FLOOR)),
            ]
        row += [_log_salience(harmony, bpm / beats) for beats in _HARMONY_BEATS]
        x = float(np.log2(bpm / _LEVEL_CENTRE_BPM))
        rows.append([*row, x, x * x])
    return np.asarray(rows, dtype=np.float64)


def _peak_near(grid: F64, salience: F64, bpm: float) -> tuple[float, float]:
    """The coarse-grid salience peak within ±_LEVEL_SPAN of `bpm`."""
    near = np.flatnonzero(np.abs(np.log(grid / bpm)) <= np.log1p(_LEVEL_SPAN))
    best = near[np.argmax(salience[near])]
    return float(grid[best]), float(salience[best])


def _related(bpm: float) -> list[float]:
    """The metrical levels related to `bpm` that may be reported (never empty)."""
    return [bpm * f for f in _LEVEL_FACTORS if MIN_BPM <= bpm * f <= MAX_BPM]


def _refine_grid(bpm: float) -> F64:
    return _geometric_grid(bpm * (1 - _REFINE_SPAN), bpm * (1 + _REFINE_SPAN), _REFINE_STEP)


def _geometric_grid(low: float, high: float, step: float) -> F64:
    count = int(np.log(high / low) / np.log1p(step)) + 1
    return np.asarray(low * (1.0 + step) ** np.arange(count), dtype=np.float64)


class _Comb:
    """Windowed phase-folding of one onset envelope, evaluated at arbitrary periods."""

    def __init__(self, envelope: F32, frame_rate: float) -> None:
        self.frame_rate = frame_rate
        window = max(1, round(_WINDOW_S * frame_rate))
        n_windows = max(1, round(envelope.size / window))
        # Windows of equal length (the last absorbs the remainder), each scaled to unit spread so
        # quiet passages count as much as loud ones.
        self.window_of = np.minimum(np.arange(envelope.size) // window, n_windows - 1)
        self.n_windows = n_windows
        values = envelope.astype(np.float64)
        sums = np.bincount(self.window_of, weights=values, minlength=n_windows)
        counts = np.bincount(self.window_of, minlength=n_windows)
        means = sums / np.maximum(counts, 1)
        centred = values - means[self.window_of]
        spread = np.sqrt(np.bincount(self.window_of, weights=centred**2) / np.maximum(counts, 1))
        self.usable = bool(np.any(spread > 1e-6)) and envelope.size >= _MIN_S * frame_rate
        self.values = centred / np.maximum(spread, 1e-6)[self.window_of]
        self.index = np.arange(envelope.size, dtype=np.float64)

    def salience(self, bpm: float, values: F64 | None = None) -> float:
        """Mean over windows of (peak − median) of the envelope folded at the beat period."""
        smooth = self._profile(bpm, values)
        return float(np.mean(smooth.max(axis=1) - np.median(smooth, axis=1)))

    def offbeat(self, bpm: float) -> float:
        """Mean over windows of the folded envelope half a period after its peak, as a share
        of the peak (both above the median): near 1 when the level's off-beats are as strong
        as its beats (so the level is probably half the beat), near 0 when they are silent."""
        smooth = self._profile(bpm)
        peak = np.argmax(smooth, axis=1)
        rows = np.arange(smooth.shape[0])
        median = np.median(smooth, axis=1)
        top = smooth[rows, peak] - median
        half = smooth[rows, (peak + smooth.shape[1] // 2) % smooth.shape[1]] - median
        return float(np.mean(np.clip(half / np.maximum(top, 1e-9), 0.0, 1.0)))

    def _profile(self, bpm: float, values: F64 | None = None) -> F64:
        """(windows, phase bins) envelope folded at the period of `bpm`, 1-2-1 smoothed."""
        values = self.values if values is None else values
        period = 60.0 * self.frame_rate / bpm
        n_bins = int(np.ceil(period))
        phase = np.floor(np.mod(self.index, period)).astype(np.intp)
        slot = self.window_of * n_bins + phase
        size = self.n_windows * n_bins
        sums = np.bincount(slot, weights=values, minlength=size).reshape(-1, n_bins)
        counts = np.bincount(slot, minlength=size).reshape(-1, n_bins)
        profile = sums / np.maximum(counts, 1)
        # Circular 1-2-1 smoothing tolerates onsets that straddle two phase bins.
        return np.asarray(
            0.5 * profile + 0.25 * (np.roll(profile, 1, axis=1) + np.roll(profile, -1, axis=1))
        )

    def chance(self, bpms: F64) -> float:
        """The best salience over `bpms` of the envelope cut into pieces and shuffled.

        Shuffling keeps the envelope's levels and short-range texture but destroys periodicity,
        so this is what picking the best of many candidate tempi reaches by chance alone. The
        pieces (~0.1 s on average) have random lengths, so no lattice of their own survives.
        """
        rng = np.random.default_rng(0)
        n_pieces = max(1, round(self.values.size / (_SHUFFLE_PIECE_S * self.frame_rate)))
        cuts = np.sort(rng.choice(np.arange(1, self.values.size), n_pieces - 1, replace=False))
        pieces = np.split(self.values, cuts)
        shuffled = np.concatenate([pieces[i] for i in rng.permutation(len(pieces))])
        return max(self.salience(float(bpm), shuffled) for bpm in bpms)

    def salience_many(self, bpms: F64) -> F64:
        return np.array([self.salience(float(b)) for b in bpms])

    def refine(self, bpm: float) -> tuple[float, float]:
        """The salience peak within ±_REFINE_SPAN of `bpm`, located to a fraction of a grid step."""
        grid = _refine_grid(bpm)
        values = self.salience_many(grid)
        best = int(np.argmax(values))
        if 0 < best < grid.size - 1:
            left, centre, right = values[best - 1 : best + 2]
            curvature = left - 2 * centre + right
            if curvature < 0:
                offset = 0.5 * (left - right) / curvature
                return float(grid[best] * (1 + _REFINE_STEP) ** offset), float(centre)
        return float(grid[best]), float(values[best])
