"""Offline tagger: the trained models' labels plus what only the measured features can say.

Genre, mood, instruments and vocals come from the musicnn tag probabilities (`learned`); this
module adds the classes the models do not give — energy, brightness and tempo class, from
loudness, spectrum and the measured beat — genre words a person put in the file name, and a
one-line description. The same inputs always give the same Tags: it is the default tagger and
the fallback when no LLM provider answers.

Assumed feature scales: `energy` is the mean frame RMS of full-scale audio (0–1), `onset_rate` is
onsets per second, spectral values are in Hz, loudness follows EBU R128 (LUFS, LU).
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath

from handlers.tagging.learned import LearnedLabels, learned_labels
from handlers.tagging.vocabulary import TEMPO_BOUNDS, Brightness, Energy, TempoClass
from schemas.payloads import KEY_NAMES, Features, Tags, TagScores

SOURCE = "heuristic"

# Below this key confidence the key is left out of the description.
MODE_CONFIDENCE_MIN = 0.2

# Genre words a person may have put in the file name, mapped to the genre they mean.
_FILENAME_GENRES: dict[str, str] = {
    "ambient": "ambient",
    "classical": "classical",
    "disco": "disco",
    "dnb": "drum and bass",
    "drum and bass": "drum and bass",
    "drum n bass": "drum and bass",
    "drum bass": "drum and bass",
    "dubstep": "dubstep",
    "folk": "folk",
    "funk": "funk",
    "hip hop": "hip hop",
    "hiphop": "hip hop",
    "house": "house",
    "jazz": "jazz",
    "lofi": "lo-fi",
    "lo fi": "lo-fi",
    "metal": "metal",
    "rap": "hip hop",
    "reggae": "reggae",
    "rock": "rock",
    "techno": "techno",
    "trance": "trance",
}


def heuristic_tags(features: Features, scores: TagScores | None, *, filename: str = "") -> Tags:
    """Label a track from the models' scores and its features; `filename` only adds genre words
    it names. Without scores (the models did not run) there are no genre, mood or instrument
    labels beyond the file name's."""
    learned = learned_labels(scores) if scores else LearnedLabels([], [], [], [])
    energy = energy_class(features)
    brightness = brightness_class(features)
    tempo = tempo_class(features)
    genres = _dedupe([*_filename_genres(filename), *learned.genre])
    return Tags(
        mood=learned.mood,
        genre=genres,
        energy=energy,
        brightness=brightness,
        tempo_class=tempo,
        description=_describe(features, genres, learned, tempo),
        source=SOURCE,
        instruments=learned.instruments,
        vocals=learned.vocals,
        scores=scores,
    )


def energy_class(features: Features) -> Energy:
    """Loudness, RMS level and onset density, weighted into one 0–1 score."""
    rms_db = 20.0 * math.log10(features.energy) if features.energy > 0 else -120.0
    score = (
        0.45 * _unit(features.loudness_lufs, -30.0, -8.0)
        + 0.20 * _unit(rms_db, -35.0, -10.0)
        + 0.35 * _unit(features.onset_rate, 0.5, 5.0)
    )
    if score >= 0.65:
        return "high"
    if score >= 0.4:
        return "medium"
    return "low"


def brightness_class(features: Features) -> Brightness:
    """Where the spectral centroid and the 85 % rolloff sit between dull and airy."""
    score = 0.6 * _unit(features.spectral_centroid_hz, 1000.0, 4000.0) + 0.4 * _unit(
        features.spectral_rolloff_hz, 2000.0, 8000.0
    )
    if score >= 0.65:
        return "bright"
    if score >= 0.3:
        return "balanced"
    return "dark"


def tempo_class(features: Features) -> TempoClass:
    """slow < 90 ≤ moderate < 120 ≤ fast < 150 ≤ very fast; unknown without a measured beat."""
    bpm = features.tempo_bpm
    if features.tempo_confidence <= 0 or not math.isfinite(bpm) or bpm <= 0:
        return "unknown"
    for bound, name in TEMPO_BOUNDS:
        if bpm < bound:
            return name
    return "very fast"


def _filename_genres(filename: str) -> list[str]:
    stem = PurePosixPath(filename.replace("\\", "/")).stem.lower()
    words = f" {' '.join(re.findall(r'[a-z0-9]+', stem))} "
    return [genre for phrase, genre in _FILENAME_GENRES.items() if f" {phrase} " in words]


def _describe(
    features: Features, genres: list[str], learned: LearnedLabels, tempo: TempoClass
) -> str:
    """E.g. "Electronic track with synth and drums, instrumental, energetic, in A minor at
    128 BPM, loud (-8 LUFS)"."""
    text = f"{genres[0].capitalize()} track" if genres else "Track"
    if learned.instruments:
        text += " with " + " and ".join(learned.instruments[:2])
    if learned.vocals:
        text += ", " + learned.vocals[0]
    if learned.mood:
        text += ", " + " and ".join(learned.mood[:2])
    if features.key in KEY_NAMES and features.key_confidence >= MODE_CONFIDENCE_MIN:
        text += (
            "," if learned.vocals or learned.mood else ""
        ) + f" in {features.key} {features.mode}"
    if tempo != "unknown":
        text += f" at {round(features.tempo_bpm)} BPM"
    lufs = features.loudness_lufs
    if not math.isfinite(lufs):
        return text + ", silent"
    level = "loud" if lufs >= -11.0 else "moderate" if lufs >= -20.0 else "quiet"
    return text + f", {level} ({round(lufs)} LUFS)"


def _unit(value: float, low: float, high: float) -> float:
    """Position of `value` from `low` (0) to `high` (1), clamped; NaN counts as 0."""
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
