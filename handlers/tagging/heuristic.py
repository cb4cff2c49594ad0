"""Offline tagger: deterministic labels from measured features, no network and no model weights.

It is the default tagger and the fallback when no LLM provider answers, so the same features must
always give the same Tags. The rules are coarse on purpose — they are guesses a listener would
agree with for typical material, not a classifier — and each one reads as a plain sentence below.

Assumed feature scales: `energy` is the mean frame RMS of full-scale audio (0–1), `onset_rate` is
onsets per second, spectral values are in Hz, loudness follows EBU R128 (LUFS, LU).
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath

from handlers.tagging.vocabulary import TEMPO_BOUNDS, Brightness, Energy, TempoClass
from schemas.payloads import KEY_NAMES, Features, Tags

SOURCE = "heuristic"

# Below this key confidence the mode (major/minor) is not trusted for moods or the description.
MODE_CONFIDENCE_MIN = 0.2
# Tempo confidence from which the beat counts as steady (dance and beat-driven genres).
STEADY_BEAT_MIN = 0.5

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


def heuristic_tags(features: Features, *, filename: str = "") -> Tags:
    """Label a track from its features; `filename` only adds genre words it names."""
    energy = energy_class(features)
    brightness = brightness_class(features)
    tempo = tempo_class(features)
    moods = _moods(features, energy, brightness, tempo)
    return Tags(
        mood=moods,
        genre=_dedupe([*_filename_genres(filename), *_genres(features, energy, tempo)]),
        energy=energy,
        brightness=brightness,
        tempo_class=tempo,
        description=_describe(features, moods[0], brightness, tempo),
        source=SOURCE,
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


def _moods(
    features: Features, energy: Energy, brightness: Brightness, tempo: TempoClass
) -> list[str]:
    mode = features.mode if features.key_confidence >= MODE_CONFIDENCE_MIN else ""
    fast = tempo in ("fast", "very fast")
    sparse = features.onset_rate < 2.0
    rules: list[tuple[bool, tuple[str, ...]]] = [
        (energy == "high", ("energetic",)),
        (energy == "low" and sparse, ("calm",)),
        (
            mode == "major" and fast and brightness != "dark" and energy != "low",
            ("happy", "uplifting"),
        ),
        (mode == "major" and tempo == "moderate" and brightness == "bright", ("cheerful",)),
        (mode == "major" and tempo == "slow" and energy != "high", ("peaceful",)),
        (mode == "minor" and tempo == "slow", ("melancholic",)),
        (
            mode == "minor" and tempo == "slow" and (energy == "low" or brightness == "dark"),
            ("sad",),
        ),
        (mode == "minor" and brightness == "dark", ("dark",)),
        (mode == "minor" and fast and energy == "high", ("tense",)),
        (mode == "minor" and tempo == "moderate" and energy != "high", ("reflective",)),
        (energy == "low" and sparse and brightness != "dark", ("dreamy",)),
    ]
    moods = _dedupe([mood for applies, names in rules if applies for mood in names])
    return moods or ["neutral"]


def _genres(features: Features, energy: Energy, tempo: TempoClass) -> list[str]:
    bpm = features.tempo_bpm
    steady = tempo != "unknown" and features.tempo_confidence >= STEADY_BEAT_MIN
    strong_beat = steady and energy != "low" and features.onset_rate >= 2.0
    rules: list[tuple[bool, tuple[str, ...]]] = [
        (features.onset_rate < 1.0 and energy == "low", ("ambient",)),
        (steady and 120.0 <= bpm <= 135.0 and energy == "high", ("electronic", "dance")),
        (strong_beat and 80.0 <= bpm <= 100.0, ("hip hop",)),
        (strong_beat and 160.0 <= bpm <= 180.0, ("drum and bass",)),
        (steady and not strong_beat and 60.0 <= bpm < 100.0 and energy != "high", ("downtempo",)),
        (
            features.loudness_range_lu >= 12.0
            and features.spectral_flatness < 0.05
            and energy != "high",
            ("classical",),
        ),
    ]
    return [genre for applies, names in rules if applies for genre in names]


def _filename_genres(filename: str) -> list[str]:
    stem = PurePosixPath(filename.replace("\\", "/")).stem.lower()
    words = f" {' '.join(re.findall(r'[a-z0-9]+', stem))} "
    return [genre for phrase, genre in _FILENAME_GENRES.items() if f" {phrase} " in words]


def _describe(features: Features, lead: str, brightness: Brightness, tempo: TempoClass) -> str:
    """E.g. "Energetic, bright track in A minor at 128 BPM, loud (-8 LUFS)"."""
    adjectives = [lead] if lead == brightness else [lead, brightness]
    text = ", ".join(adjectives).capitalize() + " track"
    if features.key in KEY_NAMES and features.key_confidence >= MODE_CONFIDENCE_MIN:
        text += f" in {features.key} {features.mode}"
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
