"""Live progress over SSE (one track, or all of a user's tracks) and over a WebSocket.

Per track: the stored history first, then live events, and the stream ends after the final
event (indexing finished, or any failure). A track whose history has expired from the PROGRESS
stream gets one final event made from its catalog status. Keep-alive comments flow while nothing
happens; when the client goes away the generator is closed and its NATS subscription removed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK

from gateway.auth import BEARER
from gateway.controllers.tracks import TrackId, require_track
from gateway.deps import ServicesDep
from gateway.errors import AUTHENTICATED, NotFoundException
from gateway.progress import has_history, progress_messages
from gateway.services import Services
from schemas.api import ProgressMessage, User
from schemas.events import Progress
from stores.catalog import FAILED_STATUS, INDEXED_STATUS, INDEXING_STAGE
from streams.names import progress_subject, tenant_progress_subject

encoder = msgspec.json.Encoder()


class ProgressFrame(msgspec.Struct, kw_only=True, frozen=True):
    """One server-sent event as documented: `data` holds a ProgressMessage as JSON."""

    event: str
    id: str
    data: str


SSE_RESPONSE = {  # documented here: a route media type would also apply to its error answers
    HTTP_200_OK: ResponseSpec(
        ProgressFrame, description="server-sent events", media_type="text/event-stream"
    )
}
NOT_FOUND_CLOSE_CODE = 4404  # application close codes are 4000–4999; this one mirrors HTTP 404


def _from_catalog(doc: dict[str, Any]) -> ProgressMessage | None:
    """A final message standing in for expired history of an indexed or failed track."""
    status = doc.get("status")
    if status not in (INDEXED_STATUS, FAILED_STATUS):
        return None
    failed = status == FAILED_STATUS
    event = Progress(
        track_id=doc["track_id"],
        tenant=doc["tenant"],
        stage=doc.get("failed_stage", INDEXING_STAGE) if failed else INDEXING_STAGE,
        state="failed" if failed else "finished",
        percent=0.0 if failed else 100.0,
        message=doc.get("failure_reason", "") if failed else "",
        at=doc.get("status_at", 0.0),
    )
    return ProgressMessage(event=event, seq=0, final=True)


async def _track_messages(
    services: Services, tenant: str, track_id: str
) -> AsyncIterator[ProgressMessage | None]:
    doc = await require_track(services, tenant, track_id)
    if not await has_history(services.js, tenant, track_id):
        standing_in = _from_catalog(doc)
        if standing_in is not None:
            return _single(standing_in)
    return progress_messages(
        services.js,
        progress_subject(tenant, track_id),
        history=True,
        keepalive_s=services.settings.sse_keepalive_s,
        stop_at_final=True,
    )


async def _single(message: ProgressMessage) -> AsyncIterator[ProgressMessage | None]:
    yield message


def _user_messages(services: Services, tenant: str) -> AsyncIterator[ProgressMessage | None]:
    return progress_messages(
        services.js,
        tenant_progress_subject(tenant),
        history=False,
        keepalive_s=services.settings.sse_keepalive_s,
        stop_at_final=False,
    )


async def _sse(messages: AsyncIterator[ProgressMessage | None]) -> AsyncIterator[Any]:
    async with contextlib.aclosing(messages):  # type: ignore[type-var]
        async for message in messages:
            if message is None:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            else:
                yield ServerSentEventMessage(
                    data=encoder.encode(message).decode(),
                    event="progress",
                    id=str(message.seq),
                )


class ProgressController(Controller):
    path = "/v1"
    tags = ["progress"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER

    @get(
        "/tracks/{track_id:str}/events",
        operation_id="trackEvents",
        responses=SSE_RESPONSE,
        raises=[*AUTHENTICATED, NotFoundException],
        description="Server-sent events (`event: progress`, data: ProgressMessage) of one track: "
        "history, then live; ends after the final event.",
    )
    async def track_events(
        self, request: Request[User, Any, State], services: ServicesDep, track_id: TrackId
    ) -> ServerSentEvent:
        messages = await _track_messages(services, request.user.user_id, track_id)
        return ServerSentEvent(_sse(messages))

    @get(
        "/events",
        operation_id="userEvents",
        responses=SSE_RESPONSE,
        raises=AUTHENTICATED,
        description="Server-sent events of all your tracks from now on; stays open.",
    )
    async def user_events(
        self, request: Request[User, Any, State], services: ServicesDep
    ) -> ServerSentEvent:
        return ServerSentEvent(_sse(_user_messages(services, request.user.user_id)))


async def _until_closed(socket: WebSocket[User, Any, State]) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data("text")


@websocket("/v1/ws/progress", operation_id="progressSocket", security=BEARER)
async def progress_socket(
    socket: WebSocket[User, Any, State],
    services: ServicesDep,
    track_id: Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{32}$")] = None,
) -> None:
    """The same messages as the SSE routes, as JSON text frames: one track (`?track_id=`, closes
    after the final event) or all of the user's tracks."""
    tenant = socket.user.user_id
    try:
        messages = (
            await _track_messages(services, tenant, track_id)
            if track_id
            else _user_messages(services, tenant)
        )
    except NotFoundException as exc:  # accepted first, so the client sees the code and reason
        await socket.accept()
        await socket.close(code=NOT_FOUND_CLOSE_CODE, reason=exc.detail)
        return
    await socket.accept()
    closed = asyncio.create_task(_until_closed(socket))
    try:
        async with contextlib.aclosing(messages):  # type: ignore[type-var]
            async for message in messages:
                if closed.done():
                    return
                if message is not None:
                    await socket.send_data(encoder.encode(message).decode())
        await socket.close()
    finally:
        closed.cancel()
