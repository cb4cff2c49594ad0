"""EBU R128 / ITU-R BS.1770-4 loudness: integrated loudness, loudness range and true peak.

The K-weighting filters are the standard's two biquads, recomputed for any sample rate from their
analogue prototypes (the parametrisation libebur128 uses), so 22.05 kHz analysis audio and 48 kHz
test tones are measured alike. The signal is filtered in chunks carrying the filter state and
reduced to 100 ms mean squares; 400 ms gating blocks (75 % overlap) and 3 s short-term blocks
are averages of consecutive 100 ms pieces, so memory stays small for long tracks.
Only mono input is measured (the analysis audio is a mono downmix), with channel weight 1.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import scipy.signal

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SILENCE_DB = -70.0  # the absolute gate; quieter programmes read as this
_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(mean square of the K-weighted signal)
_RELATIVE_GATE_LU = -10.0
_RANGE_GATE_LU = -20.0
_RANGE_PERCENTILES = (10.0, 95.0)
_PIECE_S = 0.1  # blocks are built from 100 ms pieces
_BLOCK_PIECES = 4  # 400 ms gating blocks, hop of one piece = 75 % overlap
_SHORT_TERM_PIECES = 30  # 3 s short-term blocks for the loudness range
_CHUNK_PIECES = 100
_OVERSAMPLE = 4
_PEAK_CHUNK = 1 << 16
_PEAK_MARGIN = 64  # input samples either side of a chunk: more than the interpolator's reach


def k_weighting(sample_rate: int) -> F64:
    """The BS.1770 pre-filter (high shelf, then RLB high-pass) as second-order sections."""
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10.0 ** (3.999843853973347 / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def piece_powers(samples: F32, sample_rate: int) -> F64:
    """Mean square of the K-weighted signal over consecutive whole 100 ms pieces."""
    piece = max(1, round(_PIECE_S * sample_rate))
    n_pieces = samples.size // piece
    sos = k_weighting(sample_rate)
    state = np.zeros((sos.shape[0], 2))
    powers = np.empty(n_pieces)
    for first in range(0, n_pieces, _CHUNK_PIECES):
        last = min(first + _CHUNK_PIECES, n_pieces)
        chunk = samples[first * piece : last * piece].astype(np.float64)
        weighted, state = scipy.signal.sosfilt(sos, chunk, zi=state)
        powers[first:last] = np.mean((weighted * weighted).reshape(-1, piece), axis=1)
    return powers


def integrated_loudness(powers: F64) -> float:
    """Gated integrated loudness in LUFS (SILENCE_DB when nothing passes the absolute gate)."""
    blocks = _block_means(powers, _BLOCK_PIECES)
    gated = _gate(blocks, _RELATIVE_GATE_LU)
    return _loudness(float(np.mean(gated))) if gated.size else SILENCE_DB


def loudness_range(powers: F64) -> float:
    """EBU Tech 3342 loudness range in LU: spread of gated 3 s short-term loudness."""
    gated = _gate(_block_means(powers, _SHORT_TERM_PIECES), _RANGE_GATE_LU)
    if gated.size < 2:
        return 0.0
    levels = _OFFSET + 10.0 * np.log10(gated)
    low, high = np.percentile(levels, _RANGE_PERCENTILES)
    return float(high - low)


def true_peak_dbtp(samples: F32) -> float:
    """Peak of the 4× oversampled signal in dBTP, floored at SILENCE_DB.

    Oversampling is done in chunks, loudest first, and stops as soon as no remaining chunk can
    beat the best peak so far: an interpolated sample never exceeds the chunk's sample peak times
    the largest absolute sum of one polyphase branch of the interpolation filter.
    """
    if samples.size == 0:
        return SILENCE_DB
    chunk_peaks = _chunk_peaks(samples, _PEAK_CHUNK)
    # A chunk's margins reach into its neighbours, so bound each chunk by them too.
    neighbourhood = chunk_peaks.copy()
    neighbourhood[1:] = np.maximum(neighbourhood[1:], chunk_peaks[:-1])
    neighbourhood[:-1] = np.maximum(neighbourhood[:-1], chunk_peaks[1:])
    taps, gain = _interpolator()
    best = 0.0
    for index in np.argsort(neighbourhood)[::-1]:
        if neighbourhood[index] * gain <= best:
            break
        start = index * _PEAK_CHUNK
        lo = max(start - _PEAK_MARGIN, 0)
        hi = min(start + _PEAK_CHUNK + _PEAK_MARGIN, samples.size)
        upsampled = scipy.signal.resample_poly(samples[lo:hi], _OVERSAMPLE, 1, window=taps)
        inner = upsampled[(start - lo) * _OVERSAMPLE : (start - lo + _PEAK_CHUNK) * _OVERSAMPLE]
        best = max(best, float(np.max(np.abs(inner))))
    return max(SILENCE_DB, 20.0 * math.log10(best)) if best > 0 else SILENCE_DB


def _chunk_peaks(samples: F32, size: int) -> F32:
    """Largest absolute sample of each run of `size` samples (the last run may be shorter)."""
    whole = samples.size // size * size
    body = samples[:whole].reshape(-1, size)
    peaks = np.maximum(body.max(axis=1, initial=0.0), -body.min(axis=1, initial=0.0))
    if whole < samples.size:
        tail = samples[whole:]
        peaks = np.append(peaks, max(float(tail.max()), -float(tail.min())))
    return np.asarray(peaks, dtype=np.float32)


@functools.cache
def _interpolator() -> tuple[F32, float]:
    """resample_poly's default 4× filter, and its largest polyphase-branch absolute sum."""
    half = 10 * _OVERSAMPLE
    taps = scipy.signal.firwin(2 * half + 1, 1.0 / _OVERSAMPLE, window=("kaiser", 5.0))
    gain = max(
        float(np.abs(_OVERSAMPLE * taps[phase::_OVERSAMPLE]).sum()) for phase in range(_OVERSAMPLE)
    )
    return taps.astype(np.float32), gain


def _block_means(powers: F64, pieces: int) -> F64:
    """Mean power of every run of `pieces` consecutive pieces (hop of one piece)."""
    if powers.size < pieces:
        return np.empty(0)
    cumulative = np.concatenate([[0.0], np.cumsum(powers)])
    return np.asarray((cumulative[pieces:] - cumulative[:-pieces]) / pieces, dtype=np.float64)


def _gate(blocks: F64, relative_lu: float) -> F64:
    """Blocks above the absolute gate and within `relative_lu` of their own mean loudness."""
    absolute = blocks[blocks > _power(SILENCE_DB)]
    if absolute.size == 0:
        return absolute
    threshold = _loudness(float(np.mean(absolute))) + relative_lu
    return absolute[absolute > _power(threshold)]


def _loudness(power: float) -> float:
    return _OFFSET + 10.0 * math.log10(power) if power > 0 else -math.inf


def _power(loudness: float) -> float:
    return float(10.0 ** ((loudness - _OFFSET) / 10.0))
