"""The pre-musicnn `audio` vector (embedding version 1): the similarity benchmark's baseline.

Until embedding version 2 the acoustic vector was the track's measured features, standardised
with fixed constants, softly clipped and weighted by group (timbre and rhythm leading, the key
only nudging), 128 dimensions. The benchmark puts it beside the learned vector on the same
labelled corpus; nothing in the pipeline uses it any more.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from schemas.payloads import KEY_NAMES, Features

Array = npt.NDArray[np.float64]
FEATURE_VECTOR_DIM = 128

_ANCHOR = 0.5  # constant first component (the groups together have expected squared norm ≈ 1)
_SOFT_LIMIT = 3.0  # standardised values saturate smoothly around ± this many spreads
_TINY = 1e-9

# MFCC coefficients 1-12 (c0 is overall level, covered by loudness), in the librosa convention
# (dB log-mel power, orthonormal DCT-II): typical per-track mean and spread for music.
_MFCC_MEAN_CENTER = np.array([100, -9, 36, -1, 15, -5, 10, -6, 8, -6, 5, -5], dtype=np.float64)
_MFCC_MEAN_SPREAD = np.array([30, 21, 16, 12, 12, 10, 10, 8, 8, 7, 7, 6], dtype=np.float64)
_MFCC_STD_CENTER = np.array([25, 17, 13, 11, 10, 9, 8, 8, 7, 7, 7, 6], dtype=np.float64)
_MFCC_STD_LOG_SPREAD = 0.35
# |DFT| of the chroma profile (shares summing to 1): ~0 for noise, up to ~0.3 for clean tonal music.
_PITCH_CLASS_COEFFICIENTS = 6
_PITCH_CLASS_CENTER = 0.04
_PITCH_CLASS_SPREAD = 0.06


def _log_z(value: float, center: float, spread: float) -> float:
    """Standardise a positive, multiplicative quantity (Hz, rates, ratios) on a log scale."""
    return math.log(max(value, _TINY) / center) / spread


def _coefficients(values: list[float], fallback: Array) -> Array:
    """MFCC coefficients 1..12; missing ones take the fallback so they standardise to zero."""
    out = fallback.copy()
    given = np.asarray(values[1 : 1 + fallback.size], dtype=np.float64)
    out[: given.size] = given
    return out


def _tonic(features: Features) -> int | None:
    return KEY_NAMES.index(features.key) if features.key in KEY_NAMES else None


def _timbre_mean(features: Features) -> Array:
    mean = _coefficients(features.mfcc_mean, _MFCC_MEAN_CENTER)
    return (mean - _MFCC_MEAN_CENTER) / _MFCC_MEAN_SPREAD


def _timbre_std(features: Features) -> Array:
    std = _coefficients(features.mfcc_std, _MFCC_STD_CENTER)
    return np.log(np.maximum(std, _TINY) / _MFCC_STD_CENTER) / _MFCC_STD_LOG_SPREAD


def _pitch_class_shape(features: Features) -> Array:
    """Transposition-invariant harmonic shape: |DFT| of the chroma profile, coefficients 1-6.

    Coefficient 5 measures how diatonic (fifths-based) the pitch content is, 3 and 4 how
    triadic, 6 whole-tone, 1 chromatic clustering; noise and drums leave all of them near zero.
    """
    mean = np.clip(np.asarray(features.chroma_mean, dtype=np.float64), 0.0, None)
    if mean.size != len(KEY_NAMES) or mean.sum() <= 0:
        return np.zeros(_PITCH_CLASS_COEFFICIENTS)
    magnitudes = np.abs(np.fft.rfft(mean / mean.sum()))[1 : 1 + _PITCH_CLASS_COEFFICIENTS]
    return (magnitudes - _PITCH_CLASS_CENTER) / _PITCH_CLASS_SPREAD


def _harmonic_motion(features: Features) -> Array:
    """How much the pitch content moves over time, relative to its level (scale-free)."""
    level = float(np.mean(features.chroma_mean)) if features.chroma_mean else 0.0
    motion = float(np.mean(features.chroma_std)) if features.chroma_std else 0.0
    if level <= 0 or motion <= 0:
        return np.zeros(1)
    return np.array([_log_z(motion / level, 0.75, 0.4)])


def _key(features: Features) -> Array:
    """Camelot-wheel position (relative major on the circle of fifths) and mode, by confidence."""
    tonic = _tonic(features)
    if tonic is None:
        return np.zeros(3)
    minor = features.mode == "minor"
    relative_major = (tonic + 3) % 12 if minor else tonic
    angle = 2 * math.pi * (relative_major * 7 % 12) / 12
    confidence = min(max(features.key_confidence, 0.0), 1.0)
    return confidence * np.array([math.cos(angle), math.sin(angle), -1.0 if minor else 1.0])


def _spectral_shape(features: Features) -> Array:
    return np.array(
        [
            _log_z(features.spectral_centroid_hz, 2000.0, 0.4),
            _log_z(features.spectral_bandwidth_hz, 2200.0, 0.3),
            _log_z(features.spectral_rolloff_hz, 4500.0, 0.45),
            _log_z(features.spectral_flatness, 0.01, 1.0),
            _log_z(features.zero_crossing_rate, 0.08, 0.45),
        ]
    )


def _rhythm(features: Features) -> Array:
    return np.array(
        [
            _log_z(features.tempo_bpm, 110.0, 0.3),
            _log_z(features.onset_rate, 3.0, 0.5),
            (features.tempo_confidence - 0.5) / 0.25,
        ]
    )


def _dynamics(features: Features) -> Array:
    peak_to_loudness = features.true_peak_dbtp - features.loudness_lufs
    return np.array(
        [
            (features.loudness_lufs + 14.0) / 5.0,
            (features.loudness_range_lu - 7.0) / 4.0,
            (peak_to_loudness - 13.0) / 4.0,
            _log_z(features.energy, 0.12, 0.7),  # mean frame RMS: ≈ -18 dBFS ± 6 dB
        ]
    )


# (share of the expected squared norm, group); a group of k standardised values gets each value
# scaled by sqrt(share / k). Order is the vector layout, after the anchor at index 0.
_GROUPS: tuple[tuple[float, Callable[[Features], Array]], ...] = (
    (0.28, _timbre_mean),
    (0.10, _timbre_std),
    (0.10, _pitch_class_shape),
    (0.03, _harmonic_motion),
    (0.04, _key),
    (0.15, _spectral_shape),
    (0.18, _rhythm),
    (0.12, _dynamics),
)


def feature_vector(features: Features) -> list[float]:
    """FEATURE_VECTOR_DIM floats, unit L2 norm: cosine of two vectors = acoustic likeness."""
    vector = np.zeros(FEATURE_VECTOR_DIM)
    vector[0] = _ANCHOR
    offset = 1
    for share, group in _GROUPS:
        z = np.nan_to_num(group(features), nan=0.0, posinf=_SOFT_LIMIT, neginf=-_SOFT_LIMIT)
        vector[offset : offset + z.size] = (
            math.sqrt(share / z.size) * _SOFT_LIMIT * np.tanh(z / _SOFT_LIMIT)
        )
        offset += z.size
    return [float(v) for v in vector / np.linalg.norm(vector)]
