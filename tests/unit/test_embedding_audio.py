"""The weight-free acoustic vector and the CLIP caption text, on hand-built feature sets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from handlers.embedding.audio import audio_vector, semantic_text
from schemas.payloads import AUDIO_VECTOR_DIM, KEY_NAMES, Features, Tags
from tests.factories import make_features

# A C-major chroma profile: tonic, third and fifth strong, the other scale notes medium.
_C_MAJOR_CHROMA = [0.9, 0.2, 0.5, 0.2, 0.7, 0.5, 0.2, 0.8, 0.2, 0.5, 0.2, 0.5]


def features(**overrides: Any) -> Features:
    """A mid-tempo, mid-level pop-like C major track; override what a test is about."""
    pop: dict[str, Any] = {
        "tempo_bpm": 118.0,
        "loudness_lufs": -12.0,
        "energy": 0.15,
        "spectral_centroid_hz": 2300.0,
        "spectral_bandwidth_hz": 2300.0,
        "spectral_rolloff_hz": 5000.0,
        "spectral_flatness": 0.01,
        "zero_crossing_rate": 0.09,
        "onset_rate": 3.5,
        "mfcc_mean": [-150.0, 110, -5, 30, 2, 12, -4, 8, -5, 6, -4, 4, -3],
        "mfcc_std": [40.0, 28, 18, 14, 11, 10, 9, 8, 8, 7, 7, 6, 6],
        "chroma_mean": _C_MAJOR_CHROMA,
        "chroma_std": [0.3] * 12,
    }
    return make_features(**(pop | overrides))


def ambient_drone() -> Features:
    """Slow, quiet, dark, dense and static: nothing like the pop-like default."""
    return features(
        tempo_bpm=62.0,
        tempo_confidence=0.2,
        key="F#",
        mode="minor",
        loudness_lufs=-28.0,
        loudness_range_lu=14.0,
        true_peak_dbtp=-9.0,
        energy=0.02,
        spectral_centroid_hz=700.0,
        spectral_bandwidth_hz=1100.0,
        spectral_rolloff_hz=1400.0,
        spectral_flatness=0.001,
        zero_crossing_rate=0.02,
        onset_rate=0.4,
        mfcc_mean=[-400.0, 190, 30, 10, 20, -10, 5, 0, 2, -1, 1, 0, 0],
        mfcc_std=[15.0, 8, 6, 5, 4, 4, 3, 3, 3, 3, 3, 3, 3],
        chroma_std=[0.05] * 12,
    )


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_vector_has_the_index_dimension_and_unit_norm() -> None:
    vector = audio_vector(features())
    assert len(vector) == AUDIO_VECTOR_DIM
    assert all(isinstance(v, float) for v in vector)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)


def test_vector_is_deterministic() -> None:
    assert audio_vector(features()) == audio_vector(features())


def test_similar_tracks_are_closer_than_different_ones() -> None:
    track = audio_vector(features())
    similar = audio_vector(
        features(
            tempo_bpm=124.0,
            loudness_lufs=-11.0,
            energy=0.17,
            spectral_centroid_hz=2500.0,
            onset_rate=3.8,
            mfcc_mean=[-140.0, 104, -2, 27, 4, 10, -3, 9, -6, 5, -3, 3, -2],
        )
    )
    different = audio_vector(ambient_drone())
    assert cosine(track, similar) > 0.9
    assert cosine(track, different) < 0.3
    assert cosine(track, similar) > cosine(track, different) + 0.6


def test_transposed_copy_stays_very_similar() -> None:
    shift = 5  # C major → F major: the same track, transposed up a fourth
    transposed = features(key=KEY_NAMES[shift], chroma_mean=list(np.roll(_C_MAJOR_CHROMA, shift)))
    assert cosine(audio_vector(features()), audio_vector(transposed)) > 0.95


def test_relative_key_is_closer_than_a_distant_key() -> None:
    c_major = audio_vector(features())
    a_minor = audio_vector(features(key="A", mode="minor"))  # same Camelot position
    f_sharp_minor = audio_vector(features(key="F#", mode="minor"))  # across the wheel
    assert cosine(c_major, a_minor) > cosine(c_major, f_sharp_minor)


def test_a_wrong_key_estimate_costs_little() -> None:
    """The harmonic shape does not depend on the key label; only the small key part moves."""
    misread = features(key="F#", mode="minor")  # same audio, the worst possible key estimate
    assert cosine(audio_vector(features()), audio_vector(misread)) > 0.9


def test_no_single_feature_can_dominate() -> None:
    wild = features(spectral_flatness=1e-30, tempo_bpm=1e9, onset_rate=float("nan"))
    assert cosine(audio_vector(features()), audio_vector(wild)) > 0.6


def test_silence_gives_a_finite_unit_vector() -> None:
    silence = features(
        tempo_bpm=0.0,
        tempo_confidence=0.0,
        key="",
        key_confidence=0.0,
        loudness_lufs=-70.0,
        energy=0.0,
        spectral_centroid_hz=0.0,
        spectral_bandwidth_hz=0.0,
        spectral_rolloff_hz=0.0,
        spectral_flatness=0.0,
        zero_crossing_rate=0.0,
        onset_rate=0.0,
        mfcc_mean=[],
        mfcc_std=[],
        chroma_mean=[0.0] * 12,
        chroma_std=[0.0] * 12,
    )
    vector = audio_vector(silence)
    assert all(math.isfinite(v) for v in vector)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)


def tags(**overrides: Any) -> Tags:
    base: dict[str, Any] = {
        "mood": ["energetic", "tense"],
        "genre": ["electronic", "dance"],
        "energy": "high",
        "brightness": "bright",
        "tempo_class": "fast",
        "description": "Energetic, bright track in A minor at 128 BPM, loud (-8 LUFS)",
    }
    return Tags(**(base | overrides))


def test_semantic_text_leads_with_the_tags() -> None:
    text = semantic_text(tags(), features(key="A", mode="minor"))
    assert text == (
        "energetic, tense electronic, dance music; fast tempo, high energy, bright sound, A minor."
        " Energetic, bright track in A minor at 128 BPM, loud (-8 LUFS)"
    )


def test_semantic_text_without_tags_or_key_is_still_text() -> None:
    empty = tags(mood=[], genre=[], energy="", brightness="", tempo_class="", description="")
    assert semantic_text(empty, features(key="")) == "music"


def test_semantic_text_caps_a_long_description() -> None:
    text = semantic_text(tags(description="word " * 500), features())
    assert 20 < len(text.split()) < 60
    assert text.startswith("energetic, tense electronic, dance music;")
