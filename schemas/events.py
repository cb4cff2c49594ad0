"""Pipeline events: one versioned, tagged union, one module-level encoder and decoder.

Tags follow `audio.<stage>.v<N>`; a breaking change adds a new tag, new fields get defaults.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from schemas.payloads import DecodedAudio, Features, Tags, TrackRef, Vectors


def _now() -> float:
    return time.time()


class TrackEvent(msgspec.Struct, kw_only=True, frozen=True, tag_field="type"):
    """Base of every event about one track."""

    track: TrackRef
    at: float = msgspec.field(default_factory=_now)


class Uploaded(TrackEvent, tag="audio.uploaded.v1", kw_only=True, frozen=True):
    content_type: str = ""


class Decoded(TrackEvent, tag="audio.decoded.v1", kw_only=True, frozen=True):
    audio: DecodedAudio


class Analysed(TrackEvent, tag="audio.analysed.v1", kw_only=True, frozen=True):
    audio: DecodedAudio
    features: Features


class Tagged(TrackEvent, tag="audio.tagged.v1", kw_only=True, frozen=True):
    audio: DecodedAudio
    features: Features
    tags: Tags


class Embedded(TrackEvent, tag="audio.embedded.v1", kw_only=True, frozen=True):
    audio: DecodedAudio
    features: Features
    tags: Tags
    vectors: Vectors
    embedding_version: int


class Indexed(TrackEvent, tag="audio.indexed.v1", kw_only=True, frozen=True):
    point_id: str
    embedding_version: int


class Fingerprinted(TrackEvent, tag="audio.fingerprinted.v1", kw_only=True, frozen=True):
    """The track's landmark hashes are in the fingerprint index; `duplicates` are the tenant's
    other tracks found to hold the same recording (another encode, bit rate or trim)."""

    hashes: int
    windows: int
    duplicates: list[str] = []
    fingerprint_version: int


class Failed(TrackEvent, tag="audio.failed.v1", kw_only=True, frozen=True):
    stage: str
    reason: str


class Deleted(TrackEvent, tag="audio.deleted.v1", kw_only=True, frozen=True):
    pass


ProgressState = Literal["started", "percent", "finished", "failed"]


class Progress(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="progress.v1"):
    """One step of a track's progress through one stage; the catalog status is their projection."""

    track_id: str
    tenant: str
    stage: str
    state: ProgressState
    percent: float = 0.0
    message: str = ""
    elapsed_s: float = 0.0  # on finished: how long the stage worked on this delivery
    at: float = msgspec.field(default_factory=_now)


AudioEvent = (
    Uploaded | Decoded | Analysed | Tagged | Embedded | Indexed | Fingerprinted | Failed | Deleted
)
Event = AudioEvent | Progress

encoder = msgspec.json.Encoder()
decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return encoder.encode(event)


def decode(data: bytes) -> Event:
    return decoder.decode(data)
