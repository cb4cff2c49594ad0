"""The web app: `/` and its plain ES modules and CSS (gateway/web/, package data, no build step).

Everything served here carries a strict Content-Security-Policy (no inline script or style, no
other origin, no framing) and the other headers a browser app should send. The page is static;
it talks to the same HTTP API as every other client.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
}


def _secured(response: ASGIResponse) -> ASGIResponse:
    """Static answers bypass layered response headers; this hook adds them."""
    response.headers.update(SECURITY_HEADERS)
    return response


REVALIDATE = CacheControlHeader(no_cache=True)  # no build step, no hashed names: ask each time


def web_router() -> Router:
    """`/` and `/web/…`, with the security headers on every answer."""
    page = (WEB_DIR / "index.html").read_bytes()  # read when the app is built, served from memory

    @get("/", include_in_schema=False, cache_control=REVALIDATE, sync_to_thread=False)
    def index() -> Response[bytes]:
        return Response(page, media_type="text/html")

    assets = create_static_files_router(
        path="/web",
        directories=[WEB_DIR],
        cache_control=REVALIDATE,
        name="web",
        after_request=_secured,  # type: ignore[arg-type]
    )
    return Router(path="/", route_handlers=[index, assets], response_headers=SECURITY_HEADERS)
