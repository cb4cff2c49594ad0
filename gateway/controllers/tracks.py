"""Tracks: upload, list, get, delete, download (with Range) and similar tracks.

A track belongs to the user who uploaded it; every query is scoped by that user, so another
user's id is simply not found (404, never 403). An upload is committed in the order
blob → catalog → event, and each step is undone if a later one fails: no event ever points at
a missing object, and a failed or aborted upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_206_PARTIAL_CONTENT

from gateway.auth import BEARER
from gateway.deps import FiltersDep, MetricsDep, ServicesDep
from gateway.errors import (
    AUTHENTICATED,
    ClientException,
    ConflictError,
    NotFoundException,
    PayloadTooLargeError,
    RangeNotSatisfiableError,
    ServiceUnavailableException,
    UnprocessableError,
    UnsupportedMediaError,
)
from gateway.openapi import UploadOperation
from gateway.params import provide_filters
from gateway.search.engine import MAX_K, SearchEngine
from gateway.services import Services
from gateway.uploads import SpooledUpload, receive_upload
from gateway.views import SUMMARY_FIELDS, track_detail, track_summary
from schemas.api import SearchResults, Track, TrackLinks, TrackPage, UploadAccepted, User
from schemas.events import Deleted, Uploaded
from schemas.payloads import TrackRef
from stores.blobs import BlobNotFound
from stores.catalog_order import DEFAULT_SORT, InvalidCursorError, InvalidSortError, SortName
from stores.catalog_queries import keywords
from streams.names import track_blob_key, track_blob_prefix

log = structlog.get_logger("gateway.tracks")
AuthRequest = Request[User, Any, State]
TrackId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{32}$", description="a track id")]
DOWNLOAD_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
SORT_HELP = (
    "column to order by, `-` for descending (default -created_at, newest first); tracks "
    "without a value (not analysed yet, no title tag) come last either way"
)


def _accepted(doc_or_id: dict[str, Any] | str, upload: SpooledUpload) -> UploadAccepted:
    duplicate = isinstance(doc_or_id, dict)
    track_id = doc_or_id["track_id"] if isinstance(doc_or_id, dict) else doc_or_id
    status = doc_or_id.get("status", "uploaded") if isinstance(doc_or_id, dict) else "uploaded"
    return UploadAccepted(
        track_id=track_id,
        status=status,
        duplicate=duplicate,
        sha256=upload.sha256,
        size_bytes=upload.size,
        links=TrackLinks.of(track_id),
    )


async def require_track(services: Services, tenant: str, track_id: str) -> dict[str, Any]:
    """The tenant's track, or 404 — the same answer for another user's id as for no track."""
    doc = await services.catalog.get_uploaded_track(tenant, track_id)
    if doc is None:
        raise NotFoundException(detail=f"no track {track_id}")
    return doc


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single `Range: bytes=…`; None → the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or not any(match.groups()) or size == 0:
        raise RangeNotSatisfiableError(
            detail="only one byte range (bytes=start-end) is supported",
            headers={"Content-Range": f"bytes */{size}"},
        )
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiableError(
            detail=f"range outside the file's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


class TracksController(Controller):
    path = "/v1/tracks"
    tags = ["tracks"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER

    @post(
        "/",
        operation_id="uploadTrack",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=None,  # streamed; our own cap applies (settings.max_upload_bytes)
        operation_class=UploadOperation,
        responses={
            HTTP_200_OK: ResponseSpec(UploadAccepted, description="the same bytes, uploaded before")
        },
        raises=[
            *AUTHENTICATED,
            ClientException,
            PayloadTooLargeError,
            UnsupportedMediaError,
            UnprocessableError,
            ServiceUnavailableException,
        ],
        description="Upload audio as the raw request body (file name in `X-Filename` or "
        "`?filename=`) or as multipart/form-data with a `file` field. 202 for a new track, 200 "
        "with `duplicate: true` when you uploaded the same bytes before.",
    )
    async def upload(
        self, request: AuthRequest, services: ServicesDep, metrics: MetricsDep
    ) -> Response[UploadAccepted]:
        settings = services.settings
        try:
            async with receive_upload(
                request, settings.data_path / "tmp" / "uploads", settings.max_upload_bytes
            ) as upload:
                existing = await services.catalog.find_upload(request.user.user_id, upload.sha256)
                if existing is not None:
                    metrics.uploads.labels("duplicate").inc()
                    return Response(_accepted(existing, upload), status_code=HTTP_200_OK)
                accepted = await self._commit(services, request.user.user_id, upload)
        except HTTPException:
            metrics.uploads.labels("rejected").inc()
            raise
        metrics.uploads.labels("duplicate" if accepted.duplicate else "accepted").inc()
        metrics.upload_bytes.inc(0 if accepted.duplicate else accepted.size_bytes)
        code = HTTP_200_OK if accepted.duplicate else HTTP_202_ACCEPTED
        return Response(accepted, status_code=code)

    @staticmethod
    async def _commit(services: Services, tenant: str, upload: SpooledUpload) -> UploadAccepted:
        """blob → catalog → event; undo what was done when a step fails."""
        track_id = uuid.uuid4().hex
        key, prefix = track_blob_key(tenant, track_id), track_blob_prefix(tenant, track_id)
        ref = TrackRef(
            track_id=track_id,
            tenant=tenant,
            blob_key=key,
            filename=upload.filename,
            sha256=upload.sha256,
            size_bytes=upload.size,
        )
        catalog_written = False
        try:
            await services.blobs.put_file(key, upload.path)
            fields = {
                "blob_key": key,
                "filename": upload.filename,
                "sha256": upload.sha256,
                "size_bytes": upload.size,
                "content_type": upload.content_type,
                "format": upload.format,
                "status": "uploaded",
                "created_at": time.time(),
            }
            same = await services.catalog.create_track(tenant, track_id, fields)
            if same is not None:  # the same bytes won a concurrent race
                await services.blobs.delete_prefix(prefix)
                doc = await services.catalog.get_track(tenant, same)
                return _accepted(doc or same, upload)
            catalog_written = True
            event = Uploaded(track=ref, content_type=upload.content_type)
            await services.publisher.publish(event, stage="upload", version=1)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                if catalog_written:
                    await services.catalog.delete_track(tenant, track_id)
                await services.blobs.delete_prefix(prefix)
            if isinstance(exc, Exception):  # not cancellation: the client may still be there
                log.error("upload_failed", track_id=track_id, error=repr(exc))
                raise ServiceUnavailableException(
                    detail="the upload could not be stored; nothing was kept, please retry",
                ) from exc
            raise
        return _accepted(track_id, upload)

    @get(
        "/",
        operation_id="listTracks",
        dependencies={"filters": provide_filters},
        raises=AUTHENTICATED,  # 400s are declared by Litestar (validation) already
    )
    async def list_tracks(
        self,
        *,
        request: AuthRequest,
        services: ServicesDep,
        filters: FiltersDep,
        q: Annotated[str | None, QueryParameter(max_length=200, description="words")] = None,
        status: Annotated[str | None, QueryParameter(max_length=32)] = None,
        sha256: Annotated[
            str | None, QueryParameter(pattern=r"^[0-9a-f]{64}$", description="exact bytes")
        ] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=4096)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        sort: Annotated[SortName, QueryParameter(description=SORT_HELP)] = DEFAULT_SORT,
    ) -> TrackPage:
        """A page of tracks; `next_cursor` fetches the next one (with the same query and sort)."""
        try:
            docs, next_cursor = await services.catalog.list_tracks(
                request.user.user_id,
                filters,
                words=keywords(q or ""),
                status=status,
                sha256=sha256,
                cursor=cursor,
                limit=limit,
                sort=sort,
                fields=SUMMARY_FIELDS,
            )
        except (InvalidCursorError, InvalidSortError) as exc:
            raise ClientException(detail=str(exc)) from None
        return TrackPage(items=[track_summary(doc) for doc in docs], next_cursor=next_cursor)

    @get("/{track_id:str}", operation_id="getTrack", raises=[*AUTHENTICATED, NotFoundException])
    async def get_track(
        self, request: AuthRequest, services: ServicesDep, track_id: TrackId
    ) -> Track:
        return track_detail(await require_track(services, request.user.user_id, track_id))

    @delete(
        "/{track_id:str}", operation_id="deleteTrack", raises=[*AUTHENTICATED, NotFoundException]
    )
    async def delete_track(
        self, request: AuthRequest, services: ServicesDep, track_id: TrackId
    ) -> None:
        """Remove the track's vector point, blobs and catalog document, then log `deleted`."""
        tenant = request.user.user_id
        doc = await require_track(services, tenant, track_id)
        await services.catalog.mark_deleted(tenant, track_id)
        await services.vectors.delete(tenant, track_id)
        await services.blobs.delete_prefix(track_blob_prefix(tenant, track_id))
        await services.catalog.delete_track(tenant, track_id)
        ref = TrackRef(
            track_id=track_id,
            tenant=tenant,
            blob_key=doc.get("blob_key", ""),
            filename=doc.get("filename", ""),
            sha256=doc.get("sha256", ""),
            size_bytes=doc.get("size_bytes", 0),
        )
        await services.publisher.publish(Deleted(track=ref), stage="delete", version=1)

    @get(
        "/{track_id:str}/audio",
        operation_id="downloadTrackAudio",
        responses={  # not the route's media type: that one is also used for its error answers
            HTTP_200_OK: ResponseSpec(
                bytes, description="the original upload", media_type="audio/*"
            ),
            HTTP_206_PARTIAL_CONTENT: ResponseSpec(
                bytes, description="the requested byte range", media_type="audio/*"
            ),
        },
        raises=[*AUTHENTICATED, NotFoundException, RangeNotSatisfiableError],
    )
    async def download(
        self, request: AuthRequest, services: ServicesDep, track_id: TrackId
    ) -> Stream:
        """The original upload; one `Range: bytes=start-end` is honoured (206)."""
        doc = await require_track(services, request.user.user_id, track_id)
        key: str = doc["blob_key"]
        size = await services.blobs.size(key)
        byte_range = _byte_range(request.headers.get("range"), size)
        start, end = byte_range or (0, size - 1)
        blobs = services.blobs

        async def body() -> AsyncIterator[bytes]:
            position = start
            while position <= end:
                length = min(DOWNLOAD_CHUNK, end - position + 1)
                yield await blobs.read_range(key, position, length)
                position += length

        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(end - start + 1 if size else 0),
            "Content-Disposition": f'inline; filename="{track_id}"',
        }
        if byte_range is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Stream(
            body() if size else iter([b""]),
            media_type=doc.get("content_type", "application/octet-stream"),
            status_code=HTTP_206_PARTIAL_CONTENT if byte_range else HTTP_200_OK,
            headers=headers,
        )

    @get(
        "/{track_id:str}/cover",
        operation_id="trackCoverArt",
        responses={
            HTTP_200_OK: ResponseSpec(
                bytes, description="the cover art embedded in the upload", media_type="image/*"
            ),
        },
        raises=[*AUTHENTICATED, NotFoundException],
    )
    async def cover(
        self, request: AuthRequest, services: ServicesDep, track_id: TrackId
    ) -> Response[bytes]:
        """The cover art the file carried (JPEG, PNG, GIF or WebP, at most 2 MB); 404 if none."""
        doc = await require_track(services, request.user.user_id, track_id)
        tags = (doc.get("audio") or {}).get("metadata") or {}
        if not tags.get("cover_key") or not tags.get("cover_type"):
            raise NotFoundException(detail="this track's file has no cover art")
        try:
            image = await services.blobs.get_bytes(tags["cover_key"])
        except BlobNotFound:
            raise NotFoundException(detail="this track's cover art is gone") from None
        return Response(
            image,
            media_type=tags["cover_type"],
            headers={"Content-Security-Policy": "default-src 'none'", "Cache-Control": "private"},
        )

    @get(
        "/{track_id:str}/similar",
        operation_id="similarTracks",
        dependencies={"filters": provide_filters},
        raises=[*AUTHENTICATED, NotFoundException, ConflictError],
    )
    async def similar(
        self,
        *,
        request: AuthRequest,
        services: ServicesDep,
        track_id: TrackId,
        filters: FiltersDep,
        k: Annotated[int, QueryParameter(ge=1, le=MAX_K)] = 10,
    ) -> SearchResults:
        return await SearchEngine(services, request.user.user_id).similar(track_id, k, filters)
