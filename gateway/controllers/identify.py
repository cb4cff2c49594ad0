""" "What is this clip?" and "which of my tracks are the same recording?".

Identify: the clip (raw body or multipart `file`, like an upload) is spooled and sniffed here
(400 empty, 413 too large, 415 not audio, 422 broken), parked in the blob store, and a worker
running the fingerprint stage decodes, hashes and looks it up (streams.query.request_identify):
the gateway neither analyses audio nor opens the fingerprint index, which has one owner.
Duplicates: the fingerprint stage records each track's group in the catalog (`duplicates`).
Every answer is scoped to the signed-in user, as everywhere.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK

from gateway.auth import BEARER
from gateway.controllers.tracks import TrackId, require_track
from gateway.deps import ServicesDep
from gateway.errors import (
    AUTHENTICATED,
    NotFoundException,
    PayloadTooLargeError,
    ServiceUnavailableException,
    UnprocessableError,
    UnsupportedMediaError,
)
from gateway.openapi import UploadOperation
from gateway.uploads import receive_upload
from gateway.views import track_summary
from schemas.api import DuplicateGroups, IdentifiedTrack, IdentifyResult, TrackPage, User
from schemas.queries import IdentifyQuery
from streams.names import query_blob_key
from streams.query import request_identify

AuthRequest = Request[User, Any, State]
MAX_CLIP_BYTES = 64 << 20
MAX_GROUPED_TRACKS = 2000
Document = dict[str, Any]


def duplicate_groups(docs: list[Document]) -> list[list[Document]]:
    """Connected groups of the documents by their `duplicates` links, oldest track first."""
    by_id = {doc["track_id"]: doc for doc in docs}
    parent = {track_id: track_id for track_id in by_id}

    def root(track_id: str) -> str:
        while parent[track_id] != track_id:
            parent[track_id] = parent[parent[track_id]]
            track_id = parent[track_id]
        return track_id

    for doc in docs:
        for other in doc.get("duplicates") or []:
            if other in parent:
                parent[root(other)] = root(doc["track_id"])
    groups: dict[str, list[Document]] = {}
    for doc in docs:  # oldest first (Catalog.with_duplicates)
        groups.setdefault(root(doc["track_id"]), []).append(doc)
    return [group for group in groups.values() if len(group) > 1]


class IdentifyController(Controller):
    path = "/v1"
    tags = ["identify"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER

    @post(
        "/identify",
        operation_id="identifyClip",
        status_code=HTTP_200_OK,
        request_max_body_size=None,  # streamed; MAX_CLIP_BYTES applies
        operation_class=UploadOperation,
        raises=[  # the 400 (empty clip, bad `limit`) is declared by Litestar's validation already
            *AUTHENTICATED,
            PayloadTooLargeError,
            UnsupportedMediaError,
            UnprocessableError,
            ServiceUnavailableException,
        ],
        description="Which of your tracks is this clip? Send audio as the raw body or as "
        "multipart/form-data with a `file` field (any format an upload takes, at most "
        "`TONESTREAM_IDENTIFY_MAX_S` long). Matches are ranked by time-consistent fingerprint "
        "hits, each with the clip's offset in the track; `matched: false` when nothing clears "
        "the threshold.",
    )
    async def identify(
        self,
        request: AuthRequest,
        services: ServicesDep,
        limit: Annotated[int, QueryParameter(ge=1, le=20)] = 5,
    ) -> IdentifyResult:
        settings = services.settings
        tenant = request.user.user_id
        key = query_blob_key(tenant, uuid.uuid4().hex)
        async with receive_upload(
            request, settings.data_path / "tmp" / "uploads", MAX_CLIP_BYTES
        ) as clip:
            await services.blobs.put_file(key, clip.path)
        try:
            answer = await request_identify(
                services.nc,
                IdentifyQuery(blob_key=key, tenant=tenant, limit=limit),
                settings.query_timeout_s,
            )
        finally:
            await services.blobs.delete(key)
        if answer.error:
            raise UnprocessableError(detail=f"clip: {answer.error}")
        if answer.unavailable:
            raise ServiceUnavailableException(detail=f"identify unavailable: {answer.unavailable}")
        docs = await services.catalog.get_tracks(tenant, [m.track_id for m in answer.matches])
        matches = []
        for match in answer.matches:
            doc = docs.get(match.track_id)
            if doc is None:  # deleted since it was fingerprinted
                continue
            summary = track_summary(doc)
            matches.append(
                IdentifiedTrack(
                    track_id=match.track_id,
                    offset_s=match.offset_s,
                    confidence=match.confidence,
                    hits=match.hits,
                    coverage=match.coverage,
                    filename=summary.filename,
                    title=summary.title,
                    artist=summary.artist,
                )
            )
        return IdentifyResult(matched=bool(matches), matches=matches)

    @get(
        "/tracks/{track_id:str}/duplicates",
        operation_id="trackDuplicates",
        raises=[*AUTHENTICATED, NotFoundException],
        description="Your other tracks holding the same recording as this one (another "
        "encode, bit rate or a trimmed copy), as found by the fingerprint stage.",
    )
    async def track_duplicates(
        self, request: AuthRequest, services: ServicesDep, track_id: TrackId
    ) -> TrackPage:
        tenant = request.user.user_id
        doc = await require_track(services, tenant, track_id)
        others = list(doc.get("duplicates") or [])
        found = await services.catalog.get_tracks(tenant, others)
        return TrackPage(items=[track_summary(found[t]) for t in others if t in found])

    @get(
        "/duplicates",
        operation_id="duplicateGroups",
        raises=AUTHENTICATED,
        description="Every group of your tracks that hold one recording, oldest track first.",
    )
    async def duplicates(self, request: AuthRequest, services: ServicesDep) -> DuplicateGroups:
        docs = await services.catalog.with_duplicates(request.user.user_id, MAX_GROUPED_TRACKS)
        return DuplicateGroups(
            groups=[[track_summary(doc) for doc in group] for group in duplicate_groups(docs)]
        )
