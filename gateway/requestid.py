"""Request ids: every HTTP request gets one (the client's `X-Request-ID` if it is sane), it is
bound into every log line written while the request runs, and it is returned to the client — so a
user's error report can be matched to the server's log. One summary line is logged per request.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("gateway")


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == HEADER and _SANE.match(value):
            return value.decode()
    return uuid.uuid4().hex


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        request_id = _incoming_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await app(scope, receive, send_with_id)
            except HTTPException as exc:  # answered by the exception handler outside us
                status = exc.status_code
                raise
            finally:
                user = scope.get("user")
                log.info(
                    "request",
                    method=scope.get("method", "WS"),
                    path=scope["path"],
                    status=status,
                    user=getattr(user, "user_id", None),
                    seconds=round(time.perf_counter() - started, 4),
                )

    return middleware
