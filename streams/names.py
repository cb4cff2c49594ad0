"""Every subject, stream, consumer and bucket name in Tonestream lives here and only here."""

from __future__ import annotations

from enum import StrEnum

from schemas.events import AudioEvent

AUDIO_STREAM = "AUDIO"
PROGRESS_STREAM = "PROGRESS"
AUDIO_SUBJECTS = "audio.>"
PROGRESS_SUBJECTS = "progress.>"
TAG_CACHE_BUCKET = "TAG_CACHE"
STATUS_CONSUMER = "catalog-status"
# Max-delivery advisories of the stage consumers are kept in a stream, so one published while no
# worker of that stage is connected waits for it, and each stage's workers read only their own.
ADVISORY_STREAM = "ADVISORIES"
MAX_DELIVERIES_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{AUDIO_STREAM}.*"


class Stage(StrEnum):
    DECODE = "decode"
    FEATURES = "features"
    TAGGING = "tagging"
    EMBEDDING = "embedding"
    INDEXING = "indexing"
    FINGERPRINT = "fingerprint"


STAGE_INPUT: dict[Stage, str] = {
    Stage.DECODE: "uploaded",
    Stage.FEATURES: "decoded",
    Stage.TAGGING: "analysed",
    Stage.EMBEDDING: "tagged",
    Stage.INDEXING: "embedded",
    Stage.FINGERPRINT: "indexed",
}
# Stages that run on indexed tracks: they never change a track's status (it stays `indexed`,
# searchable, whatever they do); a track's progress stream ends after the last one.
FOLLOW_UP_STAGES = frozenset({Stage.FINGERPRINT})
CHAIN_STAGES = tuple(stage for stage in Stage if stage not in FOLLOW_UP_STAGES)
"""The stages from upload to `indexed`, in order."""
LAST_STAGE = list(Stage)[-1]
# Deleted tracks' fingerprints are removed by the fingerprint workers (the index's owners).
FINGERPRINT_DELETES_CONSUMER = "fingerprint-deletes"
DELETED_FILTER = "audio.deleted.*"


def event_kind(event: AudioEvent) -> str:
    """`audio.decoded.v1` → `decoded`."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag.split(".")[1]


def audio_subject(kind: str, tenant: str) -> str:
    return f"audio.{kind}.{tenant}"


def subject_kind(subject: str) -> str:
    """`audio.decoded.<tenant>` → `decoded`."""
    return subject.split(".")[1]


def event_subject(event: AudioEvent) -> str:
    return audio_subject(event_kind(event), event.track.tenant)


def stage_filter(stage: Stage) -> str:
    return f"audio.{STAGE_INPUT[stage]}.*"


def consumer_name(stage: Stage) -> str:
    return f"stage-{stage}"


def stage_of_consumer(name: str) -> Stage | None:
    prefix = "stage-"
    if not name.startswith(prefix):
        return None
    try:
        return Stage(name.removeprefix(prefix))
    except ValueError:
        return None


def advisory_filter(stage: Stage) -> str:
    """The max-delivery advisories of one stage's consumer."""
    return MAX_DELIVERIES_ADVISORY.removesuffix("*") + consumer_name(stage)


def advisory_consumer(stage: Stage) -> str:
    return f"advisories-{stage}"


def progress_subject(tenant: str, track_id: str) -> str:
    return f"progress.{tenant}.{track_id}"


def msg_id(track_id: str, stage: str, version: int) -> str:
    """Nats-Msg-Id of a stage's output: retries dedupe, a new stage version re-publishes."""
    return f"{track_id}:{stage}:{version}"


# Search examples (text, image, audio) are turned into vectors by workers over core request/reply:
# the gateway never runs models or analysis. Semantic queries go to embedding workers (CLIP),
# audio examples to workers with the DSP pool (decode + features).
QUERY_SEMANTIC_SUBJECT = "tonestream.query.semantic"
QUERY_AUDIO_SUBJECT = "tonestream.query.audio"
QUERY_QUEUE = "tonestream-query"
# "What is this clip?": the workers running the fingerprint stage own the fingerprint index.
QUERY_IDENTIFY_SUBJECT = "tonestream.query.identify"


def query_blob_key(tenant: str, query_id: str) -> str:
    """Where the gateway parks an image or audio example while a worker embeds it."""
    return f"queries/{tenant}/{query_id}"


def track_blob_prefix(tenant: str, track_id: str) -> str:
    """Every blob of a track lives under this prefix (deleting the track deletes it)."""
    return f"{tenant}/{track_id}/"


def track_blob_key(tenant: str, track_id: str) -> str:
    """The original upload of a track."""
    return track_blob_prefix(tenant, track_id) + "original"


def analysis_blob_key(tenant: str, track_id: str) -> str:
    """The decode stage's mono analysis audio."""
    return track_blob_prefix(tenant, track_id) + "analysis.flac"


def cover_blob_key(tenant: str, track_id: str) -> str:
    """The cover art embedded in the upload (JPEG, PNG, GIF or WebP), when it had one."""
    return track_blob_prefix(tenant, track_id) + "cover"


def tenant_progress_subject(tenant: str) -> str:
    return f"progress.{tenant}.*"
