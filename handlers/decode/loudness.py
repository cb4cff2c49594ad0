"""EBU R128 / ITU-R BS.1770-4 loudness of the programme as delivered: every channel, its own rate.

Loudness is a property of the file a player will play, so it is measured while decoding, on the
source channels at the source rate (a mono downmix reads 3 LU low on correlated stereo and loses
anti-phase content). `LoudnessMeter` takes planar float blocks as the decoder produces them and
keeps only small running state, so memory stays flat however long the file is:

- K-weighting: the standard's two biquads, recomputed for any rate from their analogue prototypes
  (libebur128's parametrisation), filtered in float64 with carried state — two channels at a time
  as the real and imaginary parts of one complex signal (the filter is real, so the parts never
  mix), which halves the filter loop's passes;
- channel weights per BS.1770-4: 1.0 for front channels, 1.41 (+1.5 dB) for side and back
  surrounds, 0 for LFE — the weighting FFmpeg's `ebur128` filter applies by channel position;
- integrated loudness: 400 ms blocks at 100 ms steps, absolute gate −70 LUFS, relative −10 LU;
- loudness range (EBU Tech 3342): 3 s short-term blocks at 100 ms steps, relative gate −20 LU,
  10th–95th percentile spread;
- true peak (Tech 3341, BS.1770-4 Annex 2): the maximum of the signal oversampled 4×, computed
  only where it can exceed the running peak (see truepeak);
- sample peak, and the ReplayGain 2.0 track gain (reference −18 LUFS) players apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.signal

from handlers.decode.truepeak import TruePeakMeter
from schemas.payloads import Loudness

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SILENCE_DB = -70.0  # the absolute gate; quieter programmes read as this
REPLAYGAIN_REFERENCE_LUFS = -18.0
SURROUND_WEIGHT = 1.41
_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(weighted sum of mean squares)
_RELATIVE_GATE_LU = -10.0
_RANGE_GATE_LU = -20.0
_RANGE_PERCENTILES = (10.0, 95.0)
_PIECE_S = 0.1  # blocks are built from 100 ms pieces
_BLOCK_PIECES = 4  # 400 ms gating blocks, hop of one piece = 75 % overlap
_SHORT_TERM_PIECES = 30  # 3 s short-term blocks for the loudness range
_LFE = frozenset({"LFE", "LFE2"})
_SURROUND = frozenset({"BL", "BR", "BC", "SL", "SR", "TBL", "TBC", "TBR", "SDL", "SDR"})


def channel_weights(names: Sequence[str]) -> list[float]:
    """BS.1770-4 weights for channels named as FFmpeg names them (FL, FR, FC, LFE, BL, SL…)."""
    return [0.0 if n in _LFE else SURROUND_WEIGHT if n in _SURROUND else 1.0 for n in names]


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


class LoudnessMeter:
    """Streaming BS.1770-4 meter: `add` planar (channels, frames) blocks, then `result()`."""

    def __init__(self, sample_rate: int, weights: Sequence[float]) -> None:
        self._sos = k_weighting(sample_rate)
        self._channels = len(weights)
        pairs = (self._channels + 1) // 2
        padded = np.zeros(2 * pairs)
        padded[: self._channels] = weights
        self._pair_weights = padded.reshape(pairs, 2, 1)  # (real part's, imaginary part's)
        self._state = np.zeros((self._sos.shape[0], pairs, 2), dtype=np.complex128)
        self._piece = max(1, round(_PIECE_S * sample_rate))
        self._pending = np.empty(0)  # weighted power of samples not yet in a whole piece
        self._powers: list[F64] = []
        self._peaks = TruePeakMeter(self._channels)

    def add(self, block: F32) -> None:
        """Measure the next `block` of shape (channels, frames), float samples in [-1, 1]."""
        if block.shape[0] != self._channels:
            raise ValueError(f"expected {self._channels} channels, got {block.shape[0]}")
        if not block.shape[1]:
            return
        # complex64 is exact for float32 samples; sosfilt filters in complex128 (its own copy)
        pairs = np.zeros((self._state.shape[1], block.shape[1]), dtype=np.complex64)
        pairs.real = block[0::2]
        pairs.imag[: self._channels // 2] = block[1::2]
        filtered, self._state = scipy.signal.sosfilt(self._sos, pairs, axis=1, zi=self._state)
        squares = np.ascontiguousarray(filtered).view(np.float64)  # re, im interleaved
        np.square(squares, out=squares)
        pair_power = squares.reshape(len(filtered), block.shape[1], 2) @ self._pair_weights
        power = pair_power[0, :, 0] if len(filtered) == 1 else pair_power.sum(axis=0)[:, 0]
        if self._pending.size:
            power = np.concatenate((self._pending, power))
        whole = power.size - power.size % self._piece
        if whole:
            self._powers.append(power[:whole].reshape(-1, self._piece).mean(axis=1))
        self._pending = power[whole:]
        self._peaks.add(block)

    def result(self) -> Loudness:
        powers = np.concatenate(self._powers) if self._powers else np.empty(0)
        integrated = integrated_loudness(powers)
        return Loudness(
            integrated_lufs=round(integrated, 2),
            range_lu=round(loudness_range(powers), 2),
            true_peak_dbtp=round(_db(self._peaks.true_peak), 2),
            sample_peak_dbfs=round(_db(self._peaks.sample_peak), 2),
            replaygain_db=round(replaygain_db(integrated), 2),
        )


def replaygain_db(integrated_lufs: float) -> float:
    """ReplayGain 2.0 track gain: what brings the track to −18 LUFS (0 for silence)."""
    return 0.0 if integrated_lufs <= SILENCE_DB else REPLAYGAIN_REFERENCE_LUFS - integrated_lufs


def silence() -> Loudness:
    """What digital silence (or nothing above the absolute gate) measures."""
    return Loudness(
        integrated_lufs=SILENCE_DB, range_lu=0.0, true_peak_dbtp=SILENCE_DB,
        sample_peak_dbfs=SILENCE_DB, replaygain_db=0.0,
    )  # fmt: skip


def integrated_loudness(powers: F64) -> float:
    """Gated integrated loudness in LUFS (SILENCE_DB when nothing passes the absolute gate)."""
    gated = _gate(_block_means(powers, _BLOCK_PIECES), _RELATIVE_GATE_LU)
    return max(_loudness(float(np.mean(gated))), SILENCE_DB) if gated.size else SILENCE_DB


def loudness_range(powers: F64) -> float:
    """EBU Tech 3342 loudness range in LU: spread of gated 3 s short-term loudness."""
    gated = _gate(_block_means(powers, _SHORT_TERM_PIECES), _RANGE_GATE_LU)
    if gated.size < 2:
        return 0.0
    levels = _OFFSET + 10.0 * np.log10(gated)
    low, high = np.percentile(levels, _RANGE_PERCENTILES)
    return float(high - low)


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


def _db(amplitude: float) -> float:
    return max(SILENCE_DB, 20.0 * math.log10(amplitude)) if amplitude > 0 else SILENCE_DB


def _loudness(power: float) -> float:
    return _OFFSET + 10.0 * math.log10(power) if power > 0 else -math.inf


def _power(loudness: float) -> float:
    return float(10.0 ** ((loudness - _OFFSET) / 10.0))
