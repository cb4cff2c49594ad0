"""The offline tagger's rules, checked on hand-built feature sets with known character."""

from __future__ import annotations

import math

import msgspec
import pytest

from handlers.tagging.heuristic import heuristic_tags
from handlers.tagging.prompt import parse_reply
from schemas.payloads import Tags
from tests.factories import make_features

features = make_features


LOUD = {"loudness_lufs": -8.0, "energy": 0.3, "onset_rate": 4.5}
QUIET = {"loudness_lufs": -26.0, "energy": 0.02, "onset_rate": 0.6}
BRIGHT = {"spectral_centroid_hz": 4200.0, "spectral_rolloff_hz": 9000.0}
DARK = {"spectral_centroid_hz": 900.0, "spectral_rolloff_hz": 1800.0}


def test_club_track_matches_the_example_description() -> None:
    tags = heuristic_tags(
        features(tempo_bpm=128.0, tempo_confidence=0.9, key="A", mode="minor", **LOUD, **BRIGHT)
    )
    assert tags == Tags(
        mood=["energetic", "tense"],
        genre=["electronic", "dance"],
        energy="high",
        brightness="bright",
        tempo_class="fast",
        description="Energetic, bright track in A minor at 128 BPM, loud (-8 LUFS)",
        source="heuristic",
    )


def test_major_fast_bright_is_happy_and_uplifting() -> None:
    tags = heuristic_tags(features(tempo_bpm=140.0, **BRIGHT))
    assert tags.energy == "medium"
    assert tags.mood[:2] == ["happy", "uplifting"]
    assert tags.description.startswith("Happy, bright track in C major at 140 BPM")


def test_quiet_slow_minor_is_calm_sad_and_ambient() -> None:
    tags = heuristic_tags(features(tempo_bpm=70.0, key="D", mode="minor", **QUIET, **DARK))
    assert (tags.energy, tags.brightness, tags.tempo_class) == ("low", "dark", "slow")
    assert tags.mood == ["calm", "melancholic", "sad", "dark"]
    assert tags.genre == ["ambient", "downtempo"]
    assert tags.description == "Calm, dark track in D minor at 70 BPM, quiet (-26 LUFS)"


@pytest.mark.parametrize(
    ("bpm", "expected"),
    [
        (60.0, "slow"),
        (89.9, "slow"),
        (90.0, "moderate"),
        (119.9, "moderate"),
        (120.0, "fast"),
        (149.9, "fast"),
        (150.0, "very fast"),
        (175.0, "very fast"),
    ],
)
def test_tempo_class_boundaries(bpm: float, expected: str) -> None:
    assert heuristic_tags(features(tempo_bpm=bpm)).tempo_class == expected


def test_no_beat_confidence_means_unknown_tempo_and_no_bpm_in_description() -> None:
    tags = heuristic_tags(features(tempo_bpm=120.0, tempo_confidence=0.0))
    assert tags.tempo_class == "unknown"
    assert "BPM" not in tags.description
    assert "electronic" not in tags.genre


def test_beat_driven_genres_follow_tempo() -> None:
    hip_hop = heuristic_tags(features(tempo_bpm=90.0, onset_rate=3.0, loudness_lufs=-10.0))
    drum_and_bass = heuristic_tags(features(tempo_bpm=174.0, tempo_confidence=0.7, **LOUD))
    assert "hip hop" in hip_hop.genre
    assert "drum and bass" in drum_and_bass.genre
    assert drum_and_bass.tempo_class == "very fast"


def test_wide_dynamics_and_tonal_spectrum_suggest_classical() -> None:
    tags = heuristic_tags(
        features(loudness_range_lu=15.0, spectral_flatness=0.01, tempo_confidence=0.3)
    )
    assert tags.genre == ["classical"]


def test_unsure_key_is_left_out_of_moods_and_description() -> None:
    tags = heuristic_tags(features(tempo_bpm=70.0, mode="minor", key_confidence=0.05, **QUIET))
    assert "melancholic" not in tags.mood
    assert " in C " not in tags.description


def test_dark_mood_and_dark_spectrum_are_not_said_twice() -> None:
    tags = heuristic_tags(features(mode="minor", **DARK))
    assert tags.mood == ["dark", "reflective"]
    assert tags.description.startswith("Dark track in C minor")


def test_silence_gives_low_energy_and_says_silent() -> None:
    tags = heuristic_tags(
        features(
            loudness_lufs=-math.inf,
            energy=0.0,
            onset_rate=0.0,
            tempo_bpm=0.0,
            tempo_confidence=0.0,
        )
    )
    assert (tags.energy, tags.tempo_class) == ("low", "unknown")
    assert tags.description.endswith(", silent")


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("uploads/Deep House (Extended Mix).wav", ["house"]),
        ("C:\\music\\lo-fi_beats_03.mp3", ["lo-fi"]),
        ("liquid-dnb.flac", ["drum and bass"]),
        ("rockstar.wav", []),
    ],
)
def test_file_name_genre_words_come_first(filename: str, expected: list[str]) -> None:
    tags = heuristic_tags(features(tempo_bpm=128.0, **LOUD), filename=filename)
    assert tags.genre == [*expected, "electronic", "dance"]


def test_output_is_deterministic_and_satisfies_the_llm_reply_schema() -> None:
    cases = [
        features(),
        features(tempo_bpm=128.0, mode="minor", **LOUD, **BRIGHT),
        features(tempo_bpm=70.0, mode="minor", **QUIET, **DARK),
        features(tempo_confidence=0.0, key_confidence=0.0),
    ]
    for case in cases:
        tags = heuristic_tags(case, filename="x.wav")
        assert tags == heuristic_tags(case, filename="x.wav")
        reply = parse_reply(msgspec.json.encode(msgspec.structs.replace(tags, source="")).decode())
        assert reply.to_tags(source="heuristic") == tags
