"""The web app: `/` and its plain ES modules and CSS (gateway/web/, package data, no build step).

Everything served here carries a strict Content-Security-Policy (no inline script or style, no
other origin, no framing) and the other headers a browser app should send. The page is static;
it talks to the same HTTP API as every other client.

The files (under 100 KB) are read once when the app is built and served from memory with an
ETag, so a reload costs a 304 per file. The page lists the modules its entry (`js/main.js`, the
sign-in form) imports, directly or not, as `modulepreload` links, so a browser fetches them at
once instead of one import level after another. The links are found here from the modules' own
`import … from` lines, so the list cannot go stale. The other modules (the signed-in app,
`js/shell.js` and its pages) are named in a `<meta name="later-modules">` of the page: the entry
imports them side by side once a session exists or the sign-in form is shown, so they are not
part of the first load.
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import re
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.status_codes import HTTP_304_NOT_MODIFIED

AnyRequest = Request[Any, Any, State]

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


REVALIDATE = CacheControlHeader(no_cache=True)  # no build step, no hashed names: ask each time
_TYPES = {".js": "text/javascript", ".css": "text/css"}  # Litestar adds the charset
ENTRY = "js/main.js"
STATIC_IMPORT = re.compile(
    r"""(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}/[^'"]+)['"]"""
)


class Asset:
    """A file of the web app, in memory, with its media type and entity tag."""

    def __init__(self, body: bytes, media_type: str) -> None:
        self.body = body
        self.media_type = media_type
        self.etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'

    def answer(self, request: AnyRequest) -> Response[bytes]:
        if request.headers.get("if-none-match") == self.etag:
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": self.etag})
        return Response(self.body, media_type=self.media_type, headers={"ETag": self.etag})


def load_assets(directory: Path = WEB_DIR) -> dict[str, Asset]:
    """Every file under `directory` but the page, by its path below it ("js/main.js")."""
    assets = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != "index.html":
            kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            assets[path.relative_to(directory).as_posix()] = Asset(
                path.read_bytes(), kind or "application/octet-stream"
            )
    return assets


def static_graph(entry: str, assets: dict[str, Asset]) -> list[str]:
    """`entry` and every module it imports statically, directly or not, in the order found."""
    found, pending = [entry], [entry]
    while pending:
        name = pending.pop()
        for target in STATIC_IMPORT.findall(assets[name].body.decode()):
            imported = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if imported not in found:
                found.append(imported)
                pending.append(imported)
    return found


def page_with_preloads(page: bytes, assets: dict[str, Asset]) -> bytes:
    """The page with a `modulepreload` link per module of its entry's static graph, and the
    other modules named in `<meta name="later-modules">` (the entry imports them side by side)."""
    entry = static_graph(ENTRY, assets)
    later = [f"/web/{name}" for name in assets if name.endswith(".js") and name not in entry]
    links = "".join(f'<link rel="modulepreload" href="/web/{name}">\n' for name in entry)
    meta = f'<meta name="later-modules" content="{" ".join(later)}">\n'
    return page.replace(b"</head>", (links + meta).encode() + b"</head>", 1)


def web_router() -> Router:
    """`/` and `/web/…`, with the security headers on every answer."""
    assets = load_assets()
    page = Asset(page_with_preloads((WEB_DIR / "index.html").read_bytes(), assets), "text/html")

    @get("/", include_in_schema=False, cache_control=REVALIDATE, sync_to_thread=False)
    def index(request: AnyRequest) -> Response[bytes]:
        return page.answer(request)

    @get(
        "/web/{path:path}", include_in_schema=False, cache_control=REVALIDATE, sync_to_thread=False
    )
    def asset(request: AnyRequest, path: FromPath[str]) -> Response[bytes]:
        found = assets.get(path.lstrip("/"))
        if found is None:
            raise NotFoundException(detail="no such file of the web app")
        return found.answer(request)

    return Router(path="/", route_handlers=[index, asset], response_headers=SECURITY_HEADERS)
