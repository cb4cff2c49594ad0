"""The offline tagger: model labels from tag probabilities, feature classes from measurements."""

from __future__ import annotations

import math

import msgspec
import pytest

from handlers.tagging.heuristic import heuristic_tags
from handlers.tagging.learned import learned_labels
from handlers.tagging.prompt import parse_reply
from schemas.payloads import Tags
from tests.factories import make_features, make_scores

features = make_features


LOUD = {"loudness_lufs": -8.0, "energy": 0.3, "onset_rate": 4.5}
QUIET = {"loudness_lufs": -26.0, "energy": 0.02, "onset_rate": 0.6}
BRIGHT = {"spectral_centroid_hz": 4200.0, "spectral_rolloff_hz": 9000.0}
DARK = {"spectral_centroid_hz": 900.0, "spectral_rolloff_hz": 1800.0}
CLUB = make_scores(
    msd={"electronic": 0.6, "dance": 0.5, "instrumental": 0.45},
    mtt={"techno": 0.55, "synth": 0.5, "drums": 0.4, "no vocals": 0.6},
)
ORCHESTRA = make_scores(
    msd={"instrumental": 0.5, "beautiful": 0.2},
    mtt={"classical": 0.7, "strings": 0.6, "violin": 0.35, "loud": 0.4, "fast": 0.3},
)
SINGER = make_scores(
    msd={"pop": 0.45, "female vocalists": 0.5, "happy": 0.3, "catchy": 0.27},
    mtt={"female": 0.4, "woman": 0.35, "vocal": 0.45, "no vocals": 0.2, "guitar": 0.33},
)


def test_club_track_gets_model_genres_instruments_and_feature_classes() -> None:
    tags = heuristic_tags(
        features(tempo_bpm=128.0, tempo_confidence=0.9, key="A", mode="minor", **LOUD, **BRIGHT),
        CLUB,
    )
    assert tags == Tags(
        mood=[],
        genre=["electronic", "techno", "dance"],
        energy="high",
        brightness="bright",
        tempo_class="fast",
        description=(
            "Electronic track with synth and drums, instrumental, in A minor at 128 BPM,"
            " loud (-8 LUFS)"
        ),
        source="heuristic",
        instruments=["synth", "drums"],
        vocals=["instrumental"],
        scores=CLUB,
    )


def test_orchestral_battle_theme_is_not_called_calm_or_sad() -> None:
    """Issue 10's example: quiet-mastered, slow-measured minor orchestra used to read as calm,
    melancholic, sad and dark from the features; the models hear loud, fast strings."""
    tags = heuristic_tags(
        features(tempo_bpm=72.0, key="D", mode="minor", **QUIET, **DARK), ORCHESTRA
    )
    assert tags.genre == ["classical"]
    assert tags.mood == ["energetic"]
    assert tags.instruments == ["strings", "violin"]
    assert tags.vocals == ["instrumental"]
    assert not {"calm", "sad", "melancholic"} & set(tags.mood)
    assert (tags.energy, tags.brightness, tags.tempo_class) == ("low", "dark", "slow")


def test_voices_are_named_and_instrumental_is_dropped_when_weaker() -> None:
    labels = learned_labels(SINGER)
    assert labels.vocals == ["female vocals", "singing"]
    assert labels.genre == ["pop"]
    assert labels.mood == ["happy", "catchy"]
    assert labels.instruments == ["guitar"]


def test_labels_below_their_threshold_are_not_given() -> None:
    labels = learned_labels(make_scores(msd={"jazz": 0.24}, mtt={"piano": 0.29}))
    assert (labels.genre, labels.instruments, labels.mood, labels.vocals) == ([], [], [], [])
    labels = learned_labels(make_scores(msd={"jazz": 0.25}, mtt={"piano": 0.3}))
    assert (labels.genre, labels.instruments) == (["jazz"], ["piano"])


def test_at_most_three_labels_per_group_strongest_first() -> None:
    many = {"rock": 0.3, "pop": 0.9, "jazz": 0.5, "folk": 0.4, "punk": 0.35}
    assert learned_labels(make_scores(msd=many)).genre == ["pop", "jazz", "folk"]


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
    assert heuristic_tags(features(tempo_bpm=bpm), CLUB).tempo_class == expected


def test_no_beat_confidence_means_unknown_tempo_and_no_bpm_in_description() -> None:
    tags = heuristic_tags(features(tempo_bpm=120.0, tempo_confidence=0.0), CLUB)
    assert tags.tempo_class == "unknown"
    assert "BPM" not in tags.description


def test_without_model_scores_only_feature_classes_and_file_name_genres() -> None:
    tags = heuristic_tags(features(tempo_bpm=128.0, **LOUD), None, filename="deep house.wav")
    assert (tags.genre, tags.mood, tags.instruments, tags.vocals) == (["house"], [], [], [])
    assert tags.scores is None
    assert tags.description.startswith("House track in C major at 128 BPM")


def test_unsure_key_is_left_out_of_the_description() -> None:
    tags = heuristic_tags(features(mode="minor", key_confidence=0.05, **QUIET), ORCHESTRA)
    assert " in C " not in tags.description


def test_silence_gives_low_energy_and_says_silent() -> None:
    tags = heuristic_tags(
        features(
            loudness_lufs=-math.inf,
            energy=0.0,
            onset_rate=0.0,
            tempo_bpm=0.0,
            tempo_confidence=0.0,
        ),
        make_scores(),
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
    tags = heuristic_tags(features(tempo_bpm=128.0, **LOUD), CLUB, filename=filename)
    assert tags.genre == [*expected, "electronic", "techno", "dance"]


def test_output_is_deterministic_and_satisfies_the_llm_reply_schema() -> None:
    cases = [
        (features(), SINGER),
        (features(tempo_bpm=128.0, mode="minor", **LOUD, **BRIGHT), ORCHESTRA),
        (features(tempo_bpm=70.0, mode="minor", **QUIET, **DARK), SINGER),
        (features(tempo_confidence=0.0, key_confidence=0.0), ORCHESTRA),
    ]
    for case, scores in cases:
        tags = heuristic_tags(case, scores, filename="x.wav")
        assert tags == heuristic_tags(case, scores, filename="x.wav")
        plain = msgspec.structs.replace(tags, instruments=[], vocals=[], scores=None)
        reply = parse_reply(msgspec.json.encode(msgspec.structs.replace(plain, source="")).decode())
        assert reply.to_tags(source="heuristic") == plain
