"""HTTP API bodies: what the gateway accepts and returns, and what the CLI decodes.

One set of Structs serves both sides, so the CLI can never drift from the gateway, and the
OpenAPI document at `/schema` is generated from them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from schemas.events import Progress

Role = Literal["user", "admin"]


# -- auth ------------------------------------------------------------------------------------
class Credentials(msgspec.Struct, kw_only=True, frozen=True):
    username: str
    password: str


class User(msgspec.Struct, kw_only=True, frozen=True):
    user_id: str
    username: str
    role: Role = "user"


class TokenPair(msgspec.Struct, kw_only=True, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires
    token_type: str = "bearer"


class RefreshRequest(msgspec.Struct, kw_only=True, frozen=True):
    refresh_token: str


class Session(msgspec.Struct, kw_only=True, frozen=True):
    """A browser session: the refresh token travels only in an HttpOnly cookie, never here."""

    access_token: str
    expires_in: int  # seconds until the access token expires
    user: User


class MediaLinks(msgspec.Struct, kw_only=True, frozen=True):
    """URLs a browser can load without an Authorization header (`<audio src>`), for one track."""

    audio: str
    expires_at: float


class NewApiKey(msgspec.Struct, kw_only=True, frozen=True):
    name: str


class ApiKeyInfo(msgspec.Struct, kw_only=True, frozen=True):
    key_id: str
    name: str
    created_at: float
    last_used_at: float | None = None


class CreatedApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """`api_key` is shown once; only its hash is stored."""

    key_id: str
    name: str
    created_at: float
    api_key: str


# -- tracks ----------------------------------------------------------------------------------
class TrackLinks(msgspec.Struct, kw_only=True, frozen=True):
    self: str
    events: str
    audio: str

    @classmethod
    def of(cls, track_id: str) -> TrackLinks:
        base = f"/v1/tracks/{track_id}"
        return cls(self=base, events=f"{base}/events", audio=f"{base}/audio")


class UploadAccepted(msgspec.Struct, kw_only=True, frozen=True):
    """202 for a new track; 200 with `duplicate` when the same user uploaded the same bytes."""

    track_id: str
    status: str
    duplicate: bool
    sha256: str
    size_bytes: int
    links: TrackLinks


class StageState(msgspec.Struct, kw_only=True, frozen=True):
    state: str
    percent: float = 0.0
    message: str = ""
    at: float = 0.0


class TrackSummary(msgspec.Struct, kw_only=True, frozen=True):
    track_id: str
    filename: str
    status: str
    created_at: float
    size_bytes: int = 0
    duration_s: float | None = None
    tempo_bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    mood: list[str] = []
    genre: list[str] = []
    failure_reason: str | None = None
    title: str = ""
    artist: str = ""
    album: str = ""
    duplicates: list[str] = []  # the user's other tracks holding the same recording
    flags: list[str] = []  # "duplicate" when `duplicates` is not empty


class Track(msgspec.Struct, kw_only=True, frozen=True):
    """A track with everything known about it; features and tags appear once analysed."""

    track_id: str
    filename: str
    status: str
    created_at: float
    sha256: str
    size_bytes: int
    content_type: str
    stages: dict[str, StageState] = {}
    failure_reason: str | None = None
    failed_stage: str | None = None
    features: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    semantic_model: str | None = None
    links: TrackLinks | None = None
    duplicates: list[str] = []  # the user's other tracks holding the same recording
    flags: list[str] = []  # "duplicate" when `duplicates` is not empty


class TrackPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[TrackSummary]
    next_cursor: str | None = None


# -- identify and duplicates ----------------------------------------------------------------
class IdentifiedTrack(msgspec.Struct, kw_only=True, frozen=True):
    """A track of yours the clip was found in, and where: the clip starts `offset_s` into it."""

    track_id: str
    offset_s: float
    confidence: float  # 0..1: share of the clip's spectral peaks agreeing on that offset
    hits: int  # the clip's peaks agreeing on that offset (time-consistent hash hits)
    coverage: float  # 0..1: share of the clip's half seconds with an agreeing peak
    filename: str = ""
    title: str = ""
    artist: str = ""


class IdentifyResult(msgspec.Struct, kw_only=True, frozen=True):
    """Matches ranked by time-consistent hits; none (`matched: false`) below the threshold."""

    matched: bool
    matches: list[IdentifiedTrack] = []


class DuplicateGroups(msgspec.Struct, kw_only=True, frozen=True):
    """Groups of your tracks that hold one recording (other encodes, bit rates, trims)."""

    groups: list[list[TrackSummary]]


# -- search ----------------------------------------------------------------------------------
class SearchFilters(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Apply to every search mode. Ranges are inclusive; mood, genre, instruments and vocals
    match when the track has that label among its own (e.g. instruments="piano",
    vocals="female vocals")."""

    tempo_min: float | None = None
    tempo_max: float | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    key: str | None = None
    mode: str | None = None
    mood: str | None = None
    genre: str | None = None
    instruments: str | None = None
    vocals: str | None = None


SearchInput = Literal["text", "image", "audio", "tracks"]


class SearchWeights(msgspec.Struct, kw_only=True, frozen=True):
    text: float = 1.0
    image: float = 1.0
    audio: float = 1.0
    tracks: float = 1.0


class SearchRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Any mix of inputs; `image_base64`/`audio_base64` carry the example files' bytes."""

    text: str | None = None
    image_base64: str | None = None
    audio_base64: str | None = None
    track_ids: list[str] = []
    weights: SearchWeights = SearchWeights()
    filters: SearchFilters = SearchFilters()
    k: int = 10


class SearchHit(msgspec.Struct, kw_only=True, frozen=True):
    track_id: str
    score: float
    matched: list[SearchInput]
    track: TrackSummary


class SearchResults(msgspec.Struct, kw_only=True, frozen=True):
    """`text_mode` says how text was matched: "semantic" (CLIP) or "keyword" (the fallback)."""

    results: list[SearchHit]
    inputs: list[SearchInput]
    text_mode: Literal["semantic", "keyword"] | None = None
    notes: list[str] = []


# -- progress --------------------------------------------------------------------------------
class ProgressMessage(msgspec.Struct, kw_only=True, frozen=True):
    """One progress event as streamed over SSE/WebSocket; `final` marks the last one."""

    event: Progress
    seq: int
    final: bool = False


# -- operations ------------------------------------------------------------------------------
class ReplayRequest(msgspec.Struct, kw_only=True, frozen=True):
    stage: str
    since: str | None = None  # ISO 8601 time; omitted → the whole log


class ReplayResult(msgspec.Struct, kw_only=True, frozen=True):
    stage: str
    from_sequence: int
    pending: int


class StageStatus(msgspec.Struct, kw_only=True, frozen=True):
    stage: str
    pending: int  # messages not yet delivered
    in_flight: int  # delivered, not yet acked
    redelivered: int
    failed: int  # tracks whose failure came from this stage
    lag: int  # pending + in_flight


class SystemStatus(msgspec.Struct, kw_only=True, frozen=True):
    stages: list[StageStatus]
    tracks_by_status: dict[str, int]


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    """Every 4xx/5xx body: a status and a reason a person can act on."""

    status_code: int
    detail: str
