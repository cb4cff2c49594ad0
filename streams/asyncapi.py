"""The AsyncAPI 3.0 document of the event log: every subject, who publishes it, its payload.

Built from the same names (streams.names) and Structs (schemas.events) the code uses, so the
document cannot drift from the wire format. `tonestream docs` writes it next to the OpenAPI one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.events import (
    Analysed,
    Decoded,
    Deleted,
    Embedded,
    Failed,
    Fingerprinted,
    Indexed,
    Progress,
    Tagged,
    Uploaded,
)
from streams.names import AUDIO_STREAM, PROGRESS_STREAM, STAGE_INPUT

_AUDIO_EVENTS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "uploaded": (Uploaded, "gateway, after the original is stored and catalogued"),
    "decoded": (Decoded, "decode stage: the mono analysis audio is stored"),
    "analysed": (Analysed, "features stage: tempo, key, loudness, timbre"),
    "tagged": (Tagged, "tagging stage: mood, genre, description"),
    "embedded": (Embedded, "embedding stage: audio (and CLIP) vectors"),
    "indexed": (Indexed, "indexing stage: searchable in the vector index and catalog"),
    "fingerprinted": (Fingerprinted, "fingerprint stage: landmark hashes indexed, duplicates"),
    "failed": (Failed, "any stage: a permanent failure, with a readable reason"),
    "deleted": (Deleted, "gateway: the track was deleted everywhere"),
}


def _consumers(kind: str) -> str:
    stages = [str(stage) for stage, input_kind in STAGE_INPUT.items() if input_kind == kind]
    return f" Consumed by the {stages[0]} stage." if stages else ""


def asyncapi_document(version: str) -> dict[str, Any]:
    structs = [struct for struct, _ in _AUDIO_EVENTS.values()] + [Progress]
    _, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for kind, (struct, publisher) in _AUDIO_EVENTS.items():
        name = struct.__name__
        messages[name] = {"payload": {"$ref": f"#/components/schemas/{name}"}}
        channels[kind] = {
            "address": f"audio.{kind}.{{tenant}}",
            "description": f"Stream {AUDIO_STREAM}. Published by the {publisher}.{_consumers(kind)}"
            " Header Nats-Msg-Id = {track_id}:{stage}:{stage_version}.",
            "parameters": {"tenant": {"description": "the owning user's id"}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    messages["Progress"] = {"payload": {"$ref": "#/components/schemas/Progress"}}
    channels["progress"] = {
        "address": "progress.{tenant}.{track_id}",
        "description": f"Stream {PROGRESS_STREAM} (short max age): started/percent/finished/"
        "failed per stage; the catalog status and the gateway's live streams follow it.",
        "parameters": {
            "tenant": {"description": "the owning user's id"},
            "track_id": {"description": "the track"},
        },
        "messages": {"Progress": {"$ref": "#/components/messages/Progress"}},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Tonestream event log",
            "version": version,
            "description": "NATS JetStream subjects of the Tonestream pipeline.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"schemas": components, "messages": messages},
    }
