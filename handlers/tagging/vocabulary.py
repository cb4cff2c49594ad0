"""The closed label sets shared by every tagger, and the concepts text search ranks by.

Energy, brightness and tempo class are filterable fields in search, so the heuristic and the LLM
chain must speak exactly the same words; both take them from here. The search concepts join them
with the models' label groups, so "fast" means the measured tempo class or the models' "fast".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from handlers.understanding.labels import (
    GENRES,
    INSTRUMENTS,
    MOODS,
    VOCALS,
    Sources,
    group_scores,
)

Energy = Literal["low", "medium", "high"]
Brightness = Literal["dark", "balanced", "bright"]
TempoClass = Literal["slow", "moderate", "fast", "very fast", "unknown"]

ENERGY_CLASSES: tuple[str, ...] = get_args(Energy)
BRIGHTNESS_CLASSES: tuple[str, ...] = get_args(Brightness)
TEMPO_CLASSES: tuple[str, ...] = get_args(TempoClass)

# Upper tempo bounds (BPM, exclusive) of the named classes; faster is "very fast".
TEMPO_BOUNDS: tuple[tuple[float, TempoClass], ...] = (
    (90.0, "slow"),
    (120.0, "moderate"),
    (150.0, "fast"),
)


# -- search concepts -------------------------------------------------------------------------
# What offline text search ranks by (stores.text_search): every group label of the models
# (handlers.understanding.labels), a few model tags that belong to no group, and the measured
# classes. A concept's score for a track is the highest probability among its model tags; a
# measured class (tempo class, energy, brightness) that holds counts as 1.0 — it was measured.
EXTRA_CONCEPTS: dict[str, Sources] = {
    "60s": (("60s",), ()),
    "70s": (("70s",), ()),
    "80s": (("80s",), ()),
    "90s": (("90s",), ()),
    "00s": (("00s",), ()),
    "oldies": (("oldies",), ()),
    "fast": ((), ("fast",)),
    "slow": ((), ("slow",)),
    "loud": ((), ("loud",)),
    "quiet": ((), ("quiet",)),
    "soft": ((), ("soft",)),
    "solo": ((), ("solo",)),
}
# concept → (tags field, values that make it hold)
MEASURED_CONCEPTS: dict[str, tuple[str, frozenset[str]]] = {
    "slow": ("tempo_class", frozenset({"slow"})),
    "moderate tempo": ("tempo_class", frozenset({"moderate"})),
    "fast": ("tempo_class", frozenset({"fast", "very fast"})),
    "very fast": ("tempo_class", frozenset({"very fast"})),
    "high energy": ("energy", frozenset({"high"})),
    "low energy": ("energy", frozenset({"low"})),
    "dark": ("brightness", frozenset({"dark"})),
    "bright": ("brightness", frozenset({"bright"})),
}
MODEL_CONCEPTS: dict[str, Sources] = GENRES | MOODS | INSTRUMENTS | VOCALS | EXTRA_CONCEPTS
CONCEPTS: tuple[str, ...] = tuple(dict.fromkeys([*MODEL_CONCEPTS, *MEASURED_CONCEPTS]))
_LISTED = ("genre", "mood", "instruments", "vocals")
LISTED_WITHOUT_SCORES = 0.5  # a label a tagger gave without model probabilities (older tracks)


def concept_scores(tags: Mapping[str, Any]) -> dict[str, float]:
    """Each search concept's score (0–1) for a track's stored tags (a catalog document's
    `tags`: labels, measured classes and the models' `scores.msd` / `scores.mtt`)."""
    scores: Mapping[str, Any] = tags.get("scores") or {}
    msd: dict[str, float] = scores.get("msd") or {}
    mtt: dict[str, float] = scores.get("mtt") or {}
    out = group_scores(MODEL_CONCEPTS, msd, mtt) if msd or mtt else {}
    if not out:
        for field in _LISTED:
            for label in tags.get(field) or []:
                if label in MODEL_CONCEPTS:
                    out[label] = LISTED_WITHOUT_SCORES
    for concept, (field, holds) in MEASURED_CONCEPTS.items():
        if tags.get(field) in holds:
            out[concept] = 1.0
    return out
