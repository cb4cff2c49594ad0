"""Who is calling: every request except health, metrics, docs and the login routes must say.

Accepted credentials, in this order:
- `Authorization: Bearer <access token or API key>` (API keys start with `tsk_`);
- `X-API-Key: <API key>`;
- on WebSocket connections only, the `access_token` query parameter (browsers cannot set
  headers on a WebSocket handshake);
- on a GET of a track's audio only, the `media_token` query parameter: a token issued for that
  one track (`<audio src>` cannot send headers either).
The result is `request.user` (a `schemas.api.User`) and `request.auth` (a `Credential`).
"""

from __future__ import annotations

import re
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)

from gateway.auth import Credential, jwt_secret
from gateway.auth.tokens import TokenError, decode_access_token, decode_media_token
from gateway.services import Services
from stores.accounts import API_KEY_PREFIX

EXCLUDED_PATHS = [
    "^/health",
    "^/ready",
    "^/metrics",
    "^/schema",
    "^/v1/auth/(register|login|refresh)$",
    "^/v1/auth/session(/refresh)?$",  # the web app's cookie session: gateway.controllers.session
    "^/$",  # the web app's page and assets
    "^/web/",
]
MEDIA_PATH = re.compile(r"^/v1/tracks/([0-9a-f]{32})/audio$")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tonestream"'}


def _unauthorized(reason: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=reason, headers=_CHALLENGE)


def _presented_credential(connection: ASGIConnection[Any, Any, Any, State]) -> str:
    authorization = connection.headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    api_key = connection.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        token = connection.query_params.get("access_token")
        if isinstance(token, str) and token:
            return token
    raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")


def _media_request(connection: ASGIConnection[Any, Any, Any, State]) -> tuple[str, str] | None:
    """(track id, media token) of a header-less GET of a track's audio with `media_token`."""
    if connection.scope["type"] != ScopeType.HTTP or connection.scope["method"] not in (
        "GET",
        "HEAD",
    ):
        return None
    if "authorization" in connection.headers or "x-api-key" in connection.headers:
        return None
    match = MEDIA_PATH.match(connection.scope["path"])
    token = connection.query_params.get("media_token")
    if match is None or not isinstance(token, str) or not token:
        return None
    return match[1], token


class TonestreamAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, State]
    ) -> AuthenticationResult:
        services: Services = connection.app.state.services
        media = _media_request(connection)
        if media is not None:
            track_id, token = media
            secret = jwt_secret(connection.app.state, services.settings)
            try:
                user = decode_media_token(token, secret, track_id)
            except TokenError as exc:
                raise _unauthorized(exc.reason) from None
            return AuthenticationResult(
                user=user, auth=Credential(kind="media", subject=user.user_id)
            )
        presented = _presented_credential(connection)
        if presented.startswith(API_KEY_PREFIX):
            found = await services.accounts.user_for_api_key(presented)
            if found is None:
                raise _unauthorized("unknown or revoked API key")
            user, key_id = found
            return AuthenticationResult(user=user, auth=Credential(kind="api_key", subject=key_id))
        try:
            user = decode_access_token(
                presented, jwt_secret(connection.app.state, services.settings)
            )
        except TokenError as exc:
            raise _unauthorized(exc.reason) from None
        return AuthenticationResult(user=user, auth=Credential(kind="jwt", subject=user.user_id))


auth_middleware = DefineMiddleware(TonestreamAuthMiddleware, exclude=EXCLUDED_PATHS)
