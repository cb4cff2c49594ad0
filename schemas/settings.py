"""Settings: one Struct read from `TONESTREAM_*` environment variables, cached by get_settings().

An empty URL (NATS, Mongo, Qdrant) or S3 endpoint means "use the embedded default".
List and object values are given as JSON, e.g. `TONESTREAM_BACKOFF_S='[1, 5, 30]'`.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Literal

import msgspec

ENV_PREFIX = "TONESTREAM_"


class LLMProvider(msgspec.Struct, kw_only=True, frozen=True):
    """One OpenAI-compatible chat-completions endpoint in the tagging fallback chain."""

    name: str
    base_url: str
    model: str
    api_key: str = ""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    data_dir: str = "./var"
    # event log
    nats_url: str = ""
    duplicate_window_s: float = 900.0
    ack_wait_s: float = 30.0  # with backoff set, the server takes backoff_s[0] instead
    max_deliver: int = 5
    backoff_s: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0)
    progress_max_age_s: float = 3600.0
    stream_replicas: int = 1
    max_ack_pending: int = 0  # 0 → workers (set it to the total over all replicas of a stage)
    stage_deadline_s: float = 900.0  # one delivery's whole run; past it the message is retried
    store_timeout_s: float = 30.0  # one catalog or vector write by a stage
    repair_interval_s: float = 60.0  # how often stuck tracks are looked for (0: never)
    repair_grace_s: float = 300.0  # a track quiet this long, not indexed or failed, is examined
    # catalog
    mongo_url: str = ""
    mongo_db: str = "tonestream"
    # vectors
    qdrant_url: str = ""
    qdrant_api_key: str = ""
    qdrant_collection: str = "tracks"  # prefix: one collection per tenant, `tracks-<tenant>`
    # blobs
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "tonestream"
    s3_secure: bool = True
    s3_region: str = ""
    # workers
    workers: int = 0  # 0 → one per core
    analysis_sample_rate: int = 22050
    max_duration_s: float = 3600.0
    decode_timeout_s: float = 300.0
    worker_memory_mb: int = 4096
    # tagging
    tagger: Literal["heuristic", "llm"] = "heuristic"
    llm_providers: tuple[LLMProvider, ...] = ()
    llm_timeout_s: float = 30.0
    llm_requests_per_minute: float = 60.0
    musicnn_patches: int = 4  # 3-s patches per track the tag models hear (evenly spaced)
    # embedding
    embedding_version: int = 2  # 2: the `audio` vector is the musicnn embedding
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"  # a hub tag, a local checkpoint path, or "none"
    clip_enabled: bool = True
    clip_allow_download: bool = False  # False: HF_HUB_OFFLINE, a missing model fails fast
    model_timeout_s: float = 300.0  # one CLIP call (the first loads the weights); then retried
    # fingerprints
    fingerprint_version: int = 2  # 2: the peaks of stop 23; raise it, then replay `fingerprint`
    identify_max_s: float = 120.0  # a clip to identify is at most this long
    # gateway
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # how clients reach the gateway; empty → http://host:port
    jwt_secret: str = ""  # empty → generated once and kept in data_dir/secrets (0600)
    replicated: bool = False  # several gateways: a generated (per-pod) JWT key is refused
    access_token_ttl_s: float = 900.0
    refresh_token_ttl_s: float = 30 * 24 * 3600.0
    allow_registration: bool = True
    max_upload_bytes: int = 1 << 30
    rate_limit_per_minute: float = 600.0  # per user or API key; anonymous routes per client address
    rate_limit_burst: int = 100
    cors_origins: tuple[str, ...] = ()
    sse_keepalive_s: float = 15.0
    query_timeout_s: float = 30.0  # embedding a search example (text, image, audio) on a worker
    search_concurrency: int = 4  # searches a gateway runs at once; the rest wait their turn
    # logging
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def effective_ack_wait_s(self) -> float:
        return self.backoff_s[0] if self.backoff_s else self.ack_wait_s

    def redelivery_delay_s(self, delivered: int) -> float:
        """Delay before the next attempt after `delivered` attempts (for naks)."""
        if not self.backoff_s:
            return self.ack_wait_s
        return self.backoff_s[min(delivered, len(self.backoff_s)) - 1]

    @property
    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)


def _env_value(raw: str) -> Any:
    """Environment values are strings; lists and objects are JSON, the rest converted by msgspec."""
    text = raw.strip()
    if text.startswith(("[", "{")):  # an empty value is a plain (empty) string
        return json.loads(text)
    return text


def settings_from_env(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        raw = env.get(ENV_PREFIX + field.name.upper())
        if raw is not None:
            values[field.name] = _env_value(raw)
    values.update(overrides)
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"invalid TONESTREAM_* setting: {exc}") from None


@functools.cache
def get_settings() -> Settings:
    return settings_from_env()
