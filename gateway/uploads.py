"""Streaming uploads: the body goes to a local spool file while it is hashed and counted, so a
1 GB upload costs the gateway a few MB of memory, then it is sniffed before anything is stored.

Raw bodies and multipart/form-data (the `file` field) are read as a stream; the size cap is
enforced from Content-Length before reading, and again while counting (chunked bodies). The file
name is only a label: blob keys are made by the server, and the content decides what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request
from multipart import MultipartSegment, ParserError, PushMultipartParser

from gateway.errors import (
    ClientException,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaError,
)
from stores.blobs import spool
from stores.media import open_audio
from stores.sniff import HEAD_BYTES, NotAudioError, check_head, wav_header

FILE_FIELD = "file"
MAX_FILENAME = 255
MAX_FORM_HEADER_BYTES = 8192
_MIME = {
    "WAV": "audio/wav",
    "FLAC": "audio/flac",
    "OGG": "audio/ogg",
    "OPUS": "audio/ogg",
    "MP3": "audio/mpeg",
    "AIFF": "audio/aiff",
    "M4A": "audio/mp4",
    "MP4": "audio/mp4",
    "AAC": "audio/aac",
    "WEBM": "audio/webm",
}


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    path: Path
    filename: str
    size: int
    sha256: str
    format: str

    @property
    def content_type(self) -> str:
        return _MIME.get(self.format, "application/octet-stream")


def too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(detail=f"upload exceeds the size limit of {max_bytes} bytes")


def check_declared_size(request: Request[Any, Any, Any], max_bytes: int) -> None:
    """413 from Content-Length alone, before a byte of the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)


class _Counted:
    """Passes chunks through, keeping the head for sniffing and refusing more than the cap."""

    def __init__(self, chunks: AsyncIterator[bytes], max_bytes: int) -> None:
        self.chunks = chunks
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise too_large(self.max_bytes)
            if len(self.head) < HEAD_BYTES:
                self.head += chunk[: HEAD_BYTES - len(self.head)]
            yield chunk


def clean_filename(raw: str | None) -> str:
    """A label for display and search: the last path component, printable, bounded."""
    name = urllib.parse.unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return name[:MAX_FILENAME] or "upload"


async def _multipart_file(
    stream: AsyncIterator[bytes], boundary: str, found: dict[str, str]
) -> AsyncIterator[bytes]:
    """The body of the `file` field of a multipart stream; `found["filename"]` gets its name."""
    in_file = False
    seen_file = False
    try:
        with PushMultipartParser(boundary, max_header_size=MAX_FORM_HEADER_BYTES) as parser:
            async for chunk in stream:
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        in_file = part.name == FILE_FIELD and not seen_file
                        if in_file:
                            seen_file = True
                            found["filename"] = part.filename or ""
                    elif part is None:
                        in_file = False
                    elif in_file:
                        yield bytes(part)
            for part in parser.parse(b""):
                if isinstance(part, bytes | bytearray) and in_file:
                    yield bytes(part)
    except ParserError as exc:
        raise ClientException(detail=f"malformed multipart/form-data: {exc}") from None
    if not seen_file:
        raise ClientException(detail=f"multipart upload has no {FILE_FIELD!r} field")


def _boundary(content_type: str) -> str | None:
    kind, _, options = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for option in options.split(";"):
        name, _, value = option.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise ClientException(detail="multipart/form-data without a boundary")


def _probe(path: Path, head: bytes, size: int) -> str:
    """The audio format, or NotAudioError with the reason (empty, not audio, truncated…)."""
    fmt = check_head(head)
    if fmt is None:
        raise NotAudioError("not a recognised audio format")
    wav = wav_header(head)
    if wav is not None and wav.data_offset is not None and wav.promised_frames:
        expected = wav.data_offset + (wav.data_bytes or 0)
        if size < expected:
            raise NotAudioError(
                f"truncated WAV: the header promises {expected} bytes, the file has {size}"
            )
    with open_audio(str(path), fmt) as (_, stream):
        if stream.duration is not None and stream.duration <= 0:
            raise NotAudioError(f"{fmt} file holds no audio frames")
    return fmt


def _refusal(reason: str) -> ClientException:
    """400 for an empty body, 415 for something that is not audio, 422 for broken audio."""
    if reason.startswith("empty file"):
        return ClientException(detail=reason)
    if reason.startswith(("not audio", "not a recognised")):
        return UnsupportedMediaError(detail=reason)
    return UnprocessableError(detail=reason)


@contextlib.asynccontextmanager
async def receive_upload(
    request: Request[Any, Any, Any], spool_dir: Path, max_bytes: int
) -> AsyncIterator[SpooledUpload]:
    """Spool, hash and sniff the request's audio; the spool file is removed on exit, always.

    4xx (ClientException) with a reason: too large, empty, not audio, truncated.
    """
    check_declared_size(request, max_bytes)
    found: dict[str, str] = {}
    boundary = _boundary(request.headers.get("content-type", ""))
    chunks: AsyncIterator[bytes] = request.stream()
    if boundary is not None:
        chunks = _multipart_file(chunks, boundary, found)
        filename = None
    else:
        filename = request.headers.get("x-filename") or request.query_params.get("filename")
    counted = _Counted(chunks, max_bytes)
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="upload-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            size, sha256 = await spool(aiter(counted), file)
        try:
            fmt = await asyncio.to_thread(_probe, path, counted.head, size)
        except NotAudioError as exc:
            raise _refusal(exc.reason) from None
        yield SpooledUpload(
            path=path,
            filename=clean_filename(found.get("filename") if boundary else filename),
            size=size,
            sha256=sha256,
            format=fmt,
        )
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
