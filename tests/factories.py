"""Hand-built feature sets for tests of the stages that consume features."""

from __future__ import annotations

from typing import Any

from schemas.payloads import Features


def make_features(**overrides: Any) -> Features:
    """A mid-tempo, mid-level, balanced C major track; override what a test is about."""
    base: dict[str, Any] = {
        "duration_s": 200.0,
        "tempo_bpm": 110.0,
        "tempo_confidence": 0.8,
        "key": "C",
        "mode": "major",
        "key_confidence": 0.8,
        "loudness_lufs": -16.0,
        "loudness_range_lu": 6.0,
        "true_peak_dbtp": -1.0,
        "energy": 0.1,
        "spectral_centroid_hz": 2200.0,
        "spectral_bandwidth_hz": 2000.0,
        "spectral_rolloff_hz": 4500.0,
        "spectral_flatness": 0.08,
        "zero_crossing_rate": 0.05,
        "onset_rate": 2.5,
        "mfcc_mean": [0.0] * 13,
        "mfcc_std": [1.0] * 13,
        "chroma_mean": [1 / 12] * 12,
        "chroma_std": [0.1] * 12,
    }
    return Features(**(base | overrides))
