"""Hand-built feature sets for tests of the stages that consume features."""

from __future__ import annotations

from typing import Any

from schemas.payloads import AUDIO_VECTOR_DIM, Features, TagScores


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


def make_scores(
    msd: dict[str, float] | None = None,
    mtt: dict[str, float] | None = None,
    embedding: list[float] | None = None,
) -> TagScores:
    """Model scores: every tag at 0.01 except those given; a neutral embedding unless given."""
    from handlers.understanding.labels import MSD_LABELS, MTT_LABELS  # noqa: PLC0415
    from handlers.understanding.weights import MODEL_NAME  # noqa: PLC0415

    return TagScores(
        model=MODEL_NAME,
        msd=dict.fromkeys(MSD_LABELS, 0.01) | (msd or {}),
        mtt=dict.fromkeys(MTT_LABELS, 0.01) | (mtt or {}),
        embedding=embedding if embedding is not None else [0.5] * AUDIO_VECTOR_DIM,
    )
