"""`/v1/auth/session`: the web app's login, where the refresh token never reaches JavaScript.

Signing in answers with an access token (kept in the page's memory only) and sets the refresh
token as an HttpOnly, SameSite=Strict cookie limited to this path (gateway.auth.browser). On
reload the page spends the cookie for a new access token; each refresh rotates the cookie, and
a spent one revokes the whole login, as with `/v1/auth/refresh`. Scripts use `/v1/auth/login`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, Request, Response, delete, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from gateway.auth.browser import (
    REFRESH_COOKIE,
    SESSION_PATH,
    is_secure,
    refresh_cookie,
    same_origin_only,
)
from gateway.controllers.auth import access_token, log_in, revoke, rotate
from gateway.deps import ServicesDep
from gateway.errors import AUTHENTICATED
from gateway.services import Services
from schemas.api import Credentials, Session, User

AnyRequest = Request[Any, Any, State]
SESSION_ERRORS = [*AUTHENTICATED, PermissionDeniedException]


def _session(
    request: AnyRequest, services: Services, user: User, refresh: str
) -> Response[Session]:
    body = Session(
        access_token=access_token(services, request.app.state, user),
        expires_in=int(services.settings.access_token_ttl_s),
        user=user,
    )
    cookie = refresh_cookie(services.settings, is_secure(request, services.settings), refresh)
    return Response(body, cookies=[cookie], headers={"Cache-Control": "no-store"})


def _cookie_token(request: AnyRequest) -> str:
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise NotAuthorizedException(detail="no session: sign in")
    return token


class SessionController(Controller):
    path = SESSION_PATH
    tags = ("auth",)
    guards = [same_origin_only]  # noqa: RUF012 - Litestar's declaration style

    @post("/", operation_id="startSession", status_code=HTTP_200_OK, raises=SESSION_ERRORS)
    async def start(
        self,
        request: AnyRequest,
        data: JSONBody[Credentials],
        services: ServicesDep,
    ) -> Response[Session]:
        """Sign a browser in: an access token, and the refresh token as an HttpOnly cookie."""
        user, refresh = await log_in(services, data)
        return _session(request, services, user, refresh)

    @post("/refresh", operation_id="refreshSession", status_code=HTTP_200_OK, raises=SESSION_ERRORS)
    async def refresh(self, request: AnyRequest, services: ServicesDep) -> Response[Session]:
        """Spend the session cookie for a new access token; the cookie is rotated."""
        try:
            user, refresh = await rotate(services, _cookie_token(request))
        except NotAuthorizedException as exc:
            secure = is_secure(request, services.settings)
            gone = refresh_cookie(services.settings, secure, None)
            exc.headers = {"Set-Cookie": gone.to_header(header="")}
            raise
        return _session(request, services, user, refresh)

    @delete("/", operation_id="endSession", status_code=HTTP_204_NO_CONTENT, raises=SESSION_ERRORS)
    async def end(self, request: AnyRequest, services: ServicesDep) -> Response[None]:
        """Sign out: the session's whole login is revoked and the cookie deleted."""
        token = request.cookies.get(REFRESH_COOKIE)
        if token:  # already revoked or expired: signing out still succeeds
            with contextlib.suppress(NotAuthorizedException):
                await revoke(services, token)
        cookie = refresh_cookie(services.settings, is_secure(request, services.settings), None)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[cookie])
