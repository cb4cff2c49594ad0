"""Catalog documents → API Structs: the one place that knows both shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.api import StageState, Track, TrackLinks, TrackSummary

Document = dict[str, Any]


def duplicate_fields(doc: Document) -> dict[str, list[str]]:
    """`duplicates` and the `duplicate` flag the fingerprint stage's finding gives a track."""
    duplicates = list(doc.get("duplicates") or [])
    return {"duplicates": duplicates, "flags": ["duplicate"] if duplicates else []}


SUMMARY_FIELDS = (
    "track_id", "filename", "status", "created_at", "size_bytes", "failure_reason",
    "features.duration_s", "features.tempo_bpm", "features.key", "features.mode",
    "tags.mood", "tags.genre", "duplicates",
    "audio.metadata.title", "audio.metadata.artist", "audio.metadata.album",
)  # fmt: skip
"""The catalog fields `track_summary` reads: a track list asks for these alone."""


def track_summary(doc: Document) -> TrackSummary:
    features: Document = doc.get("features") or {}
    tags: Document = doc.get("tags") or {}
    file_tags: Document = (doc.get("audio") or {}).get("metadata") or {}
    return TrackSummary(
        track_id=doc["track_id"],
        filename=doc.get("filename", ""),
        status=doc.get("status", "uploaded"),
        created_at=doc.get("created_at", 0.0),
        size_bytes=doc.get("size_bytes", 0),
        duration_s=features.get("duration_s"),
        tempo_bpm=features.get("tempo_bpm"),
        key=features.get("key"),
        mode=features.get("mode"),
        mood=tags.get("mood", []),
        genre=tags.get("genre", []),
        failure_reason=doc.get("failure_reason"),
        title=file_tags.get("title", ""),
        artist=file_tags.get("artist", ""),
        album=file_tags.get("album", ""),
        **duplicate_fields(doc),
    )


def track_detail(doc: Document) -> Track:
    stages = {
        name: msgspec.convert(state, StageState) for name, state in doc.get("stages", {}).items()
    }
    return Track(
        track_id=doc["track_id"],
        filename=doc.get("filename", ""),
        status=doc.get("status", "uploaded"),
        created_at=doc.get("created_at", 0.0),
        sha256=doc.get("sha256", ""),
        size_bytes=doc.get("size_bytes", 0),
        content_type=doc.get("content_type", ""),
        stages=stages,
        failure_reason=doc.get("failure_reason"),
        failed_stage=doc.get("failed_stage"),
        features=doc.get("features"),
        tags=doc.get("tags"),
        audio=doc.get("audio"),
        semantic_model=doc.get("semantic_model"),
        links=TrackLinks.of(doc["track_id"]),
        **duplicate_fields(doc),
    )
