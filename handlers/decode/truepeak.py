"""True peak (EBU Tech 3341, BS.1770-4 Annex 2), exact for its interpolator and cheap.

The true peak is the largest magnitude of the signal oversampled 4×. Oversampling every sample
of every channel was a third of the decode stage's CPU time, yet almost all of that work cannot
change the answer: an interpolated value is a weighted sum of TAPS neighbouring samples, so it
is at most `gain` (the largest L1 norm of the filter's phases) times their largest magnitude.
`TruePeakMeter` therefore cuts each channel into runs of RUN output positions, bounds every run
by `gain` × the sample-domain maximum of its support, and interpolates only the runs whose bound
can beat the running true peak — largest bound first, so the threshold rises quickly. The result
is exactly what interpolating everything would give; on music typically 5–15 % of the runs are
interpolated (more on brick-wall-limited masters, whose every run is close to the ceiling).

The interpolator is a polyphase windowed sinc: phases at 1/4, 2/4 and 3/4 of a sample (phase 0 is
the sample itself, i.e. the sample peak), TAPS = 32 taps per phase — about the length of FFmpeg's
own resampler filter — with a Kaiser window (β = 7), each phase normalised to unit DC gain. Its
response is flat within 0.01 dB up to 0.85 × Nyquist (18.7 kHz at 44.1 kHz; −0.4 dB at 0.9 ×).
Against FFmpeg's `ebur128` (another oversampler) it agrees within 0.15 dB on every test signal
and encode (`bench --sections loudness`; FFmpeg reads lower on the 96 kHz broadband signal, where
β and TAPS change this meter's answer by under 0.02 dB). The last TAPS/2 samples of the programme
have no complete support and count through the sample peak only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

TAPS = 32
RUN = 32  # output positions per run; ≥ TAPS - 1, so a run's support spans two runs' samples
_KAISER_BETA = 7.0
_PHASES = (0.25, 0.5, 0.75)
_FIRST_BATCH = 8  # the most promising runs, interpolated first to raise the threshold
_BATCH = 256  # runs interpolated together afterwards (bounds the temporary arrays)


def phase_filters() -> F64:
    """The interpolator, shape (TAPS, 3): column p weighs x[n - TAPS/2 + 1 .. n + TAPS/2] to
    give the signal at n + _PHASES[p]."""
    half = TAPS // 2
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)
    columns = []
    for phase in _PHASES:
        t = taps - phase
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, None)))
        column = np.sinc(t) * window
        columns.append(column / column.sum())
    return np.stack(columns, axis=1)


def run_matrix() -> F32:
    """(RUN + TAPS - 1, RUN * 3): a run's support samples @ this = its RUN × 3 interpolated
    values (the phase filters laid out as a banded Toeplitz matrix: one BLAS product per batch
    of runs, several times faster than sliding windows)."""
    filters = phase_filters()
    matrix = np.zeros((RUN + TAPS - 1, RUN, len(_PHASES)))
    for position in range(RUN):
        matrix[position : position + TAPS, position, :] = filters
    return matrix.reshape(RUN + TAPS - 1, -1).astype(np.float32)


_RUN_MATRIX = run_matrix()
# Every interpolated |value| ≤ _GAIN × the largest |sample| it weighs (the margin covers float32
# rounding of the weighted sums).
_GAIN = float(np.abs(phase_filters()).sum(axis=0).max()) * (1.0 + 1e-4)


class TruePeakMeter:
    """Running sample peak and 4×-oversampled peak of planar (channels, frames) float blocks."""

    def __init__(self, channels: int) -> None:
        self._history = np.zeros((channels, 0), dtype=np.float32)  # samples not yet in a run
        self.sample_peak = 0.0
        self.interpolated = 0.0  # the largest interpolated |value| found so far
        self.runs = 0  # runs seen and runs interpolated, for the benchmark's breakdown
        self.runs_interpolated = 0

    @property
    def true_peak(self) -> float:
        return max(self.interpolated, self.sample_peak)

    def add(self, block: F32) -> None:
        if block.shape[1]:
            self.sample_peak = max(self.sample_peak, _magnitude(block))
        x = np.concatenate((self._history, block), axis=1)
        runs = (x.shape[1] - (TAPS - 1)) // RUN
        if runs <= 0:
            self._history = x
            return
        bounds = _run_bounds(x, runs)
        self.runs += bounds.size
        channel, run = np.nonzero(bounds > self.true_peak)
        if channel.size:
            order = np.argsort(-bounds[channel, run], kind="stable")
            self._interpolate(x, bounds, channel[order], run[order])
        self._history = x[:, runs * RUN :]

    def _interpolate(
        self,
        x: F32,
        bounds: F32,
        channel: npt.NDArray[np.intp],
        run: npt.NDArray[np.intp],
    ) -> None:
        """Interpolate candidate runs (in decreasing order of bound) while they can still win."""
        offsets = np.arange(RUN + TAPS - 1)
        batch = _FIRST_BATCH
        while channel.size:
            rows = x[channel[:batch, None], run[:batch, None] * RUN + offsets]
            values = rows @ _RUN_MATRIX
            self.runs_interpolated += len(rows)
            self.interpolated = max(self.interpolated, _magnitude(values))
            channel, run = channel[batch:], run[batch:]
            still = bounds[channel, run] > self.true_peak
            channel, run = channel[still], run[still]
            batch = _BATCH


def _run_bounds(x: F32, runs: int) -> F32:
    """(channels, runs): _GAIN × the largest |sample| in each run's support, x[rRUN:rRUN+RUN+TAPS-1]
    (within chunks r and r+1 of RUN samples; chunk `runs` may be partial)."""
    magnitude = np.abs(x[:, : (runs + 1) * RUN])
    chunk = magnitude[:, : runs * RUN].reshape(x.shape[0], runs, RUN).max(axis=2)
    last = magnitude[:, runs * RUN :].max(axis=1, keepdims=True)
    chunk = np.concatenate((chunk, last), axis=1)
    bounds: F32 = np.maximum(chunk[:, :-1], chunk[:, 1:]) * np.float32(_GAIN)
    return bounds


def _magnitude(samples: npt.NDArray[np.floating]) -> float:
    """Largest |x|, without building |x| (two passes over the data, no temporary copy)."""
    return max(float(samples.max()), -float(samples.min()))
