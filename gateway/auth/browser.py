"""What keeps the web app's cookie session safe from other sites (CSRF).

The refresh token of a browser session lives in an HttpOnly cookie, `SameSite=Strict`, sent
only to `/v1/auth/session…`. A browser attaches cookies by itself, so the routes that read it
also demand what another site cannot produce:
- the header `X-Requested-With: tonestream` (a cross-site page cannot set a custom header
  without a CORS preflight, which the gateway does not grant);
- an `Origin` (and `Sec-Fetch-Site`), when the browser sends them, of this very gateway.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from schemas.settings import Settings

REFRESH_COOKIE = "ts_refresh"
SESSION_PATH = "/v1/auth/session"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "tonestream"


def _own_origins(connection: ASGIConnection[Any, Any, Any, State]) -> set[str]:
    host = connection.headers.get("host", "")
    origins = {f"http://{host}", f"https://{host}"}
    services = connection.app.state.get("services")
    public_url = services.settings.public_url if services is not None else ""
    if public_url:
        parts = urlsplit(public_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def same_origin_only(connection: ASGIConnection[Any, Any, Any, State], _: BaseRouteHandler) -> None:
    """A guard: the request comes from the gateway's own page, not from another site."""
    if connection.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise PermissionDeniedException(
            detail=f"browser session routes need the header 'X-Requested-With: {CSRF_VALUE}'"
        )
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise PermissionDeniedException(detail=f"cross-site request refused ({fetch_site})")
    origin = connection.headers.get("origin")
    if origin is not None and origin not in _own_origins(connection):
        raise PermissionDeniedException(detail=f"origin {origin} may not use this session")


def refresh_cookie(settings: Settings, secure: bool, token: str | None) -> Cookie:
    """The cookie carrying `token`, or (None) the instruction to delete it."""
    return Cookie(
        key=REFRESH_COOKIE,
        value=token or "",
        path=SESSION_PATH,
        max_age=int(settings.refresh_token_ttl_s) if token else 0,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def is_secure(connection: ASGIConnection[Any, Any, Any, State], settings: Settings) -> bool:
    """Whether the browser reaches us over TLS (directly, or as the public URL says)."""
    return connection.url.scheme == "https" or settings.public_url.startswith("https://")
