"""The closed label sets shared by every tagger.

Energy, brightness and tempo class are filterable fields in search, so the heuristic and the LLM
chain must speak exactly the same words; both take them from here.
"""

from __future__ import annotations

from typing import Literal, get_args

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
