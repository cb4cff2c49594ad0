"""Genre, mood, instrument and vocal labels from the musicnn tag probabilities (pure).

The vocabularies, groups and thresholds live in `handlers.understanding.labels`; this module only
applies them to one track's `TagScores`.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.understanding.labels import (
    GENRE_MIN,
    GENRES,
    INSTRUMENT_MIN,
    INSTRUMENTS,
    MOOD_MIN,
    MOODS,
    VOCAL_MIN,
    VOCALS,
    group_scores,
    strongest,
)
from schemas.payloads import TagScores


@dataclass(frozen=True)
class LearnedLabels:
    genre: list[str]
    mood: list[str]
    instruments: list[str]
    vocals: list[str]


def learned_labels(scores: TagScores) -> LearnedLabels:
    """The labels whose group score reaches the group's threshold, strongest first."""
    msd, mtt = scores.msd, scores.mtt
    vocals = strongest(group_scores(VOCALS, msd, mtt), VOCAL_MIN)
    if "instrumental" in vocals[:1]:
        vocals = ["instrumental"]  # the strongest answer says no voice: drop weaker voice guesses
    else:
        vocals = [label for label in vocals if label != "instrumental"]
    return LearnedLabels(
        genre=strongest(group_scores(GENRES, msd, mtt), GENRE_MIN),
        mood=strongest(group_scores(MOODS, msd, mtt), MOOD_MIN),
        instruments=strongest(group_scores(INSTRUMENTS, msd, mtt), INSTRUMENT_MIN),
        vocals=vocals,
    )
