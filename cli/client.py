"""The gateway's HTTP API as async methods that return the schemas.api Structs.

Every failure becomes a GatewayError whose message is one readable line: a refused connection
says where the CLI looked and how to start the gateway, a 4xx/5xx carries the server's `detail`.
Rate-limited requests (429) wait as long as the server asks and try again, so a large ingest
finishes instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from cli import sse
from cli.connection import API_KEY_ENV, Connection
from cli.errors import CliError
from schemas.api import (
    DuplicateGroups,
    IdentifyResult,
    Problem,
    ProgressMessage,
    ReplayRequest,
    ReplayResult,
    SearchRequest,
    SearchResults,
    SystemStatus,
    Track,
    TrackPage,
    UploadAccepted,
)

T = TypeVar("T")
Params = Mapping[str, str | int | float]

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0, read=120.0)
"""Reads wait several keep-alive intervals: a stream silent for longer is a dead one."""
UPLOAD_CHUNK = 1 << 20
MAX_ATTEMPTS = 8  # for 429 answers
MAX_RETRY_AFTER_S = 60.0


class GatewayError(CliError):
    """`status_code` is None when the gateway could not be reached or the connection broke."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def affects_every_request(self) -> bool:
        """Unreachable or unauthorised: no point trying the next file."""
        return self.status_code in (None, 401, 403)


def _retry_after_s(response: httpx.Response, attempt: int) -> float:
    try:
        delay = float(response.headers.get("retry-after", ""))
    except ValueError:
        delay = 2.0**attempt / 4
    return min(max(delay, 0.1), MAX_RETRY_AFTER_S)


async def _file_chunks(path: Path, on_sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    sent = 0
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, UPLOAD_CHUNK):
            yield chunk
            sent += len(chunk)
            on_sent(sent)
    finally:
        file.close()


class Gateway:
    """One HTTP connection pool to one gateway; use as `async with Gateway(connection) as gw`."""

    def __init__(
        self, connection: Connection, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.connection = connection
        headers = {"Authorization": f"Bearer {connection.api_key}"} if connection.api_key else {}
        self._http = httpx.AsyncClient(
            base_url=connection.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    # -- plumbing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        url = self.connection.url
        try:
            yield
        except httpx.ConnectError:
            raise GatewayError(
                f"cannot reach the gateway at {url} — is `tonestream up` running?"
            ) from None
        except httpx.TimeoutException:
            raise GatewayError(f"the gateway at {url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise GatewayError(f"lost the connection to the gateway at {url}: {exc}") from None

    def _problem(self, response: httpx.Response) -> GatewayError:
        try:
            detail = msgspec.json.decode(response.content, type=Problem).detail
        except msgspec.DecodeError:
            detail = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        if response.status_code == 401 and not self.connection.api_key:
            detail += (
                f" (no API key: pass --api-key, set {API_KEY_ENV}, or start `tonestream up`,"
                f" which saves one in {self.connection.credentials_path})"
            )
        return GatewayError(detail, response.status_code)

    @contextlib.asynccontextmanager
    async def _open(
        self,
        method: str,
        path: str,
        *,
        content: bytes | Callable[[], AsyncIterable[bytes]] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """The response, its body not yet read; errors and 429s handled. A callable `content`
        makes a fresh streamed body for every attempt."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body = content() if callable(content) else content
            request = self._http.build_request(method, path, content=body, **kwargs)
            with self._transport_errors():
                response = await self._http.send(request, stream=True)
                try:
                    if response.status_code == 429 and attempt < MAX_ATTEMPTS:
                        await asyncio.sleep(_retry_after_s(response, attempt))
                        continue
                    if response.is_error:
                        await response.aread()
                        raise self._problem(response)
                    yield response
                    return
                finally:
                    await response.aclose()

    async def _call(self, method: str, path: str, type_: type[T], **kwargs: Any) -> T:
        async with self._open(method, path, **kwargs) as response:
            with self._transport_errors():
                content = await response.aread()
        try:
            return msgspec.json.decode(content, type=type_)
        except msgspec.DecodeError as exc:
            raise GatewayError(
                f"unexpected answer from {self.connection.url}{path}: {exc}", response.status_code
            ) from None

    async def _post_json(self, path: str, body: msgspec.Struct, type_: type[T]) -> T:
        headers = {"Content-Type": "application/json"}
        return await self._call(
            "POST", path, type_, content=msgspec.json.encode(body), headers=headers
        )

    # -- tracks ----------------------------------------------------------------------------
    async def upload(self, path: Path, size: int, on_sent: Callable[[int], None]) -> UploadAccepted:
        """Stream `path` (`size` bytes) as the raw request body; `on_sent(bytes so far)`."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "X-Filename": urllib.parse.quote(path.name),
        }
        return await self._call(
            "POST",
            "/v1/tracks",
            UploadAccepted,
            content=lambda: _file_chunks(path, on_sent),
            headers=headers,
        )

    async def tracks(self, params: Params) -> TrackPage:
        return await self._call("GET", "/v1/tracks", TrackPage, params=params)

    async def track(self, track_id: str) -> Track:
        return await self._call("GET", f"/v1/tracks/{_segment(track_id)}", Track)

    async def delete(self, track_id: str) -> None:
        async with self._open("DELETE", f"/v1/tracks/{_segment(track_id)}"):
            pass

    async def similar(self, track_id: str, params: Params) -> SearchResults:
        path = f"/v1/tracks/{_segment(track_id)}/similar"
        return await self._call("GET", path, SearchResults, params=params)

    async def search(self, request: SearchRequest) -> SearchResults:
        return await self._post_json("/v1/search", request, SearchResults)

    # -- fingerprints ----------------------------------------------------------------------
    async def identify(self, path: Path, limit: int) -> IdentifyResult:
        """Which track is the clip at `path` (sent as the raw body)?"""
        headers = {"Content-Type": "application/octet-stream"}
        return await self._call(
            "POST",
            "/v1/identify",
            IdentifyResult,
            content=lambda: _file_chunks(path, lambda _: None),
            headers=headers,
            params={"limit": limit},
        )

    async def duplicate_groups(self) -> DuplicateGroups:
        return await self._call("GET", "/v1/duplicates", DuplicateGroups)

    async def progress(self, track_id: str) -> AsyncIterator[ProgressMessage]:
        """One track's progress: its history, then live events, ending after the `final` one."""
        path = f"/v1/tracks/{_segment(track_id)}/events"
        async with self._open("GET", path, timeout=STREAM_TIMEOUT) as response:
            with self._transport_errors():
                async for event in sse.events(response.aiter_lines()):
                    if event.event != "progress":
                        continue
                    try:
                        message = msgspec.json.decode(event.data, type=ProgressMessage)
                    except msgspec.DecodeError as exc:
                        raise GatewayError(f"unexpected progress event: {exc}") from None
                    yield message
                    if message.final:
                        return

    # -- operations ------------------------------------------------------------------------
    async def replay(self, request: ReplayRequest) -> ReplayResult:
        return await self._post_json("/v1/admin/replay", request, ReplayResult)

    async def status(self) -> SystemStatus:
        return await self._call("GET", "/v1/admin/status", SystemStatus)


def _segment(value: str) -> str:
    """A path segment: an ID typed by a person cannot reach another route."""
    return urllib.parse.quote(value, safe="")
