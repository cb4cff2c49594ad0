"""The learned acoustic vector (standardised musicnn embedding) and the CLIP caption text."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest

from handlers.embedding.audio import NoModelScoresError, audio_vector, semantic_text
from handlers.understanding.weights import penultimate_stats
from schemas.payloads import AUDIO_VECTOR_DIM, Features, Tags, TagScores
from tests.factories import make_features, make_scores

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


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def embedding(seed: int, shift: float = 0.0) -> list[float]:
    """A plausible raw penultimate embedding: the models' training mean plus spread-scaled noise."""
    mean, spread = penultimate_stats()
    noise = np.random.default_rng(seed).standard_normal(AUDIO_VECTOR_DIM)
    return [float(v) for v in mean + spread * (noise + shift)]


def test_vector_has_the_index_dimension_and_unit_norm() -> None:
    vector = audio_vector(make_scores(embedding=embedding(1)))
    assert len(vector) == AUDIO_VECTOR_DIM
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)
    assert vector == audio_vector(make_scores(embedding=embedding(1)))


def test_standardisation_uses_the_models_own_training_statistics() -> None:
    """Each unit is centred on its batch-norm shift and scaled by its |gamma|: an embedding
    that differs from the training mean by k spreads in every unit points along (1, 1, …)."""
    mean, spread = penultimate_stats()
    vector = audio_vector(make_scores(embedding=[float(v) for v in mean + 2.0 * spread]))
    assert np.allclose(vector, 1 / math.sqrt(AUDIO_VECTOR_DIM))


def test_close_embeddings_are_close_and_unrelated_ones_are_not() -> None:
    base = np.asarray(embedding(1))
    _, spread = penultimate_stats()
    nudged = [float(v) for v in base + 0.1 * spread]
    similar = cosine(
        audio_vector(make_scores(embedding=embedding(1))),
        audio_vector(make_scores(embedding=nudged)),
    )
    unrelated = cosine(
        audio_vector(make_scores(embedding=embedding(1))),
        audio_vector(make_scores(embedding=embedding(2))),
    )
    assert similar > 0.99
    assert abs(unrelated) < 0.3


def test_the_training_mean_itself_gives_a_finite_unit_vector() -> None:
    mean, _ = penultimate_stats()
    vector = audio_vector(make_scores(embedding=[float(v) for v in mean]))
    assert all(math.isfinite(v) for v in vector)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    "scores",
    [
        None,
        msgspec.structs.replace(make_scores(), model="another-model"),
        make_scores(embedding=[0.1] * 128),
        make_scores(embedding=[math.nan] * AUDIO_VECTOR_DIM),
    ],
)
def test_a_track_without_usable_model_scores_is_refused(scores: TagScores | None) -> None:
    with pytest.raises(NoModelScoresError, match=r"model|embedding"):
        audio_vector(scores)


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


def test_semantic_text_names_instruments_and_voice() -> None:
    text = semantic_text(tags(instruments=["synth", "drums"], vocals=["instrumental"]), features())
    assert text.startswith(
        "energetic, tense electronic, dance music with synth, drums, instrumental;"
    )
