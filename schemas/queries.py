"""Search examples turned into vectors: the requests the gateway sends to workers, and the answer.

The gateway never runs models or analysis (DESIGN), so "music for this text / this picture / like
this clip" asks a worker over core NATS request/reply. Text travels inline; an image or an audio
clip is parked in the blob store and only its key travels, like audio in pipeline events.
The messages are one tagged union (`query.<kind>.v<N>`) with one module-level encoder and decoder,
as the pipeline events are.
"""

from __future__ import annotations

import msgspec


class SemanticQuery(
    msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="query.semantic.v1"
):
    """A text or an image (exactly one) to embed with CLIP, in the tracks' `semantic` space."""

    text: str | None = None
    image_key: str | None = None  # blob key of the parked image (PNG, JPEG, …)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.image_key is None):
            raise ValueError("a semantic query carries exactly one of `text` and `image_key`")
        if self.text is not None and not self.text.strip():
            raise ValueError("the query text is blank")


class AudioQuery(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="query.audio.v1"):
    """An audio example, parked in the blob store, to measure into the tracks' `audio` space."""

    blob_key: str


class QueryVector(
    msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="query.vector.v1"
):
    """The answer: a unit vector, or why there is none.

    `unavailable` — the service cannot answer now (CLIP disabled or without weights, no worker
    connected, timed out); the gateway degrades (keyword search) and says so. `error` — the example
    itself is at fault (not audio, not an image, too long); the gateway answers with a 4xx.
    `model` names the CLIP model of a semantic vector; the audio vector needs no model (None).
    """

    vector: list[float] | None = None
    model: str | None = None
    unavailable: str = ""
    error: str = ""


class IdentifyQuery(
    msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="query.identify.v1"
):
    """A clip, parked in the blob store, to find among `tenant`'s tracks by its fingerprint."""

    blob_key: str
    tenant: str
    limit: int = 5


class ClipMatch(msgspec.Struct, kw_only=True, frozen=True):
    """A track the clip was found in: where the clip starts in it, and how sure that is."""

    track_id: str
    offset_s: float  # the clip's start inside the track
    confidence: float  # 0..1: share of the clip's peaks that agree on that offset
    hits: int  # the clip's peaks agreeing on that offset
    coverage: float  # 0..1: share of the clip's half seconds with an agreeing peak


class IdentifyAnswer(
    msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="query.identified.v1"
):
    """The matches, best first ([] = no match), or why there are none (as in QueryVector)."""

    matches: list[ClipMatch] = []
    unavailable: str = ""
    error: str = ""


QueryMessage = SemanticQuery | AudioQuery | QueryVector | IdentifyQuery | IdentifyAnswer

encoder = msgspec.json.Encoder()
decoder: msgspec.json.Decoder[QueryMessage] = msgspec.json.Decoder(QueryMessage)


def encode(message: QueryMessage) -> bytes:
    return encoder.encode(message)


def decode(data: bytes) -> QueryMessage:
    """Raises msgspec.DecodeError (ValidationError included) for anything but a valid message."""
    return decoder.decode(data)
