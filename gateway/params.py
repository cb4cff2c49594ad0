"""Query parameters shared by listing and search routes, as one injectable `filters` dependency.

Declared once here, they appear with their types and enums in the OpenAPI document of every
route that uses them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.di import Provide
from litestar.params import FromQuery, QueryParameter

from schemas.api import SearchFilters

KeyName = Literal["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
ModeName = Literal["major", "minor"]
NonNegative = Annotated[float | None, QueryParameter(ge=0, le=100_000)]


def _filters(
    *,
    tempo_min: NonNegative = None,
    tempo_max: NonNegative = None,
    duration_min: NonNegative = None,
    duration_max: NonNegative = None,
    key: FromQuery[KeyName | None] = None,
    mode: FromQuery[ModeName | None] = None,
    mood: Annotated[str | None, QueryParameter(max_length=64)] = None,
    genre: Annotated[str | None, QueryParameter(max_length=64)] = None,
    instruments: Annotated[str | None, QueryParameter(max_length=64)] = None,
    vocals: Annotated[str | None, QueryParameter(max_length=64)] = None,
) -> SearchFilters:
    return SearchFilters(
        tempo_min=tempo_min,
        tempo_max=tempo_max,
        duration_min=duration_min,
        duration_max=duration_max,
        key=key,
        mode=mode,
        mood=mood,
        genre=genre,
        instruments=instruments,
        vocals=vocals,
    )


provide_filters = Provide(_filters, sync_to_thread=False)
