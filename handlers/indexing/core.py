"""What the index and the catalog store for an embedded track: pure, so it is tested alone."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.events import Embedded


def vector_payload(event: Embedded) -> dict[str, Any]:
    """The searchable fields stored beside the vectors (filters: tempo, key, mood, genre…)."""
    features, tags = event.features, event.tags
    return {
        "tenant": event.track.tenant,
        "track_id": event.track.track_id,
        "filename": event.track.filename,
        "tempo_bpm": features.tempo_bpm,
        "key": features.key,
        "mode": features.mode,
        "duration_s": features.duration_s,
        "loudness_lufs": features.loudness_lufs,
        "mood": tags.mood,
        "genre": tags.genre,
        "instruments": tags.instruments,
        "vocals": tags.vocals,
        "energy": tags.energy,
        "description": tags.description,
        "embedding_version": event.embedding_version,
    }


def catalog_fields(event: Embedded) -> dict[str, Any]:
    """The catalog document's content fields (status is projected from progress separately).

    The models' tag probabilities are kept (`tags.scores.msd.<tag>`, `tags.scores.mtt.<tag>`, so
    they can be queried); their embedding is not — it lives in the index as the `audio` vector.
    """
    fields: dict[str, Any] = msgspec.to_builtins(event.track)
    tags: dict[str, Any] = msgspec.to_builtins(event.tags)
    if tags.get("scores"):
        tags["scores"].pop("embedding", None)
    fields.update(
        audio=msgspec.to_builtins(event.audio),
        features=msgspec.to_builtins(event.features),
        tags=tags,
        semantic_model=event.vectors.semantic_model,
        embedding_version=event.embedding_version,
        indexed_at=event.at,
    )
    return fields
