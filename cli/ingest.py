"""`tonestream ingest`: upload files, a few at a time, and optionally follow each to its end.

Each file is hashed here first. The same bytes named twice in one run are uploaded once; bytes
the gateway already has are not sent at all (asked by hash) and come back as `duplicate` (one
already indexed or failed is not waited for); the gateway's sha256 must match the local one, so
a file that changed while it was read is reported instead of being indexed under the wrong
content. With `wait`, each track's progress
stream (its history first, then live events) is followed until its final event.

Errors that would hit every file (gateway unreachable, key refused) stop the whole run; any
other failure belongs to its file and the rest carry on.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Protocol

import msgspec

from cli.client import Gateway, GatewayError
from schemas.api import TrackLinks, UploadAccepted
from schemas.events import Progress

INDEXED = "indexed"
FAILED = "failed"
_HASH_CHUNK = 1 << 20


class IngestResult(msgspec.Struct, kw_only=True, frozen=True):
    """One file's outcome, as `--json` prints it."""

    path: str
    track_id: str | None
    status: str
    reason: str | None = None
    duplicate: bool = False


def succeeded(result: IngestResult, *, waited: bool) -> bool:
    """Indexed when the run waited; otherwise accepted by the gateway (and not known failed)."""
    return result.status == INDEXED if waited else result.status != FAILED


class Observer(Protocol):
    """What the live view is told; every call names the file by its path."""

    def started(self, path: Path) -> None: ...

    def sent(self, path: Path, done: int, size: int) -> None: ...

    def accepted(self, path: Path, answer: UploadAccepted) -> None: ...

    def progressed(self, path: Path, event: Progress) -> None: ...

    def finished(self, path: Path, result: IngestResult) -> None: ...


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _failed(path: Path, reason: str, track_id: str | None = None) -> IngestResult:
    return IngestResult(path=str(path), track_id=track_id, status=FAILED, reason=reason)


class Ingest:
    def __init__(
        self, gateway: Gateway, observer: Observer, *, wait: bool, concurrency: int
    ) -> None:
        self.gateway = gateway
        self.observer = observer
        self.wait = wait
        self._slots = asyncio.Semaphore(concurrency)
        self._by_sha256: dict[str, asyncio.Future[IngestResult]] = {}

    async def run(self, files: list[Path]) -> list[IngestResult]:
        """Every file's result, in the order given; GatewayError if the gateway is unusable."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._file(path)) for path in files]
        except* GatewayError as errors:
            raise errors.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _file(self, path: Path) -> IngestResult:
        async with self._slots:
            self.observer.started(path)
            result = await self._hash_and_send(path)
            self.observer.finished(path, result)
            return result

    async def _hash_and_send(self, path: Path) -> IngestResult:
        try:
            size, sha256 = await asyncio.to_thread(_size_and_sha256, path)
        except OSError as exc:
            return _failed(path, exc.strerror or str(exc))
        earlier = self._by_sha256.get(sha256)
        if earlier is not None:  # the same bytes under another name in this run
            result = await earlier
            return msgspec.structs.replace(result, path=str(path), duplicate=True)
        future = asyncio.get_running_loop().create_future()
        self._by_sha256[sha256] = future
        try:
            result = await self._send(path, size, sha256)
        except BaseException:
            future.cancel()
            raise
        future.set_result(result)
        return result

    async def _uploaded_before(self, sha256: str) -> UploadAccepted | None:
        """The gateway's track with these bytes, asked by hash: nothing needs sending."""
        page = await self.gateway.tracks({"sha256": sha256, "limit": 1})
        if not page.items:
            return None
        track = page.items[0]
        return UploadAccepted(
            track_id=track.track_id,
            status=track.status,
            duplicate=True,
            sha256=sha256,
            size_bytes=track.size_bytes,
            links=TrackLinks.of(track.track_id),
        )

    async def _send(self, path: Path, size: int, sha256: str) -> IngestResult:
        try:
            answer = await self._uploaded_before(sha256) or await self.gateway.upload(
                path, size, lambda done: self.observer.sent(path, done, size)
            )
        except GatewayError as exc:
            if exc.affects_every_request:
                raise
            return _failed(path, str(exc))
        except OSError as exc:
            return _failed(path, exc.strerror or str(exc))
        if answer.sha256 != sha256:
            return _failed(
                path,
                "the gateway received other bytes than were hashed here"
                " (did the file change during the upload?)",
                answer.track_id,
            )
        self.observer.accepted(path, answer)
        status, reason = answer.status, None
        try:
            if self.wait and status not in (INDEXED, FAILED):
                status, reason = await self._follow(path, answer.track_id)
            elif status == FAILED:
                reason = (await self.gateway.track(answer.track_id)).failure_reason
        except GatewayError as exc:
            if exc.affects_every_request:
                raise
            status, reason = FAILED, str(exc)
        return IngestResult(
            path=str(path),
            track_id=answer.track_id,
            status=status,
            reason=reason,
            duplicate=answer.duplicate,
        )

    async def _follow(self, path: Path, track_id: str) -> tuple[str, str | None]:
        """(status, reason) from the track's final progress event, or the catalog's status if
        the stream ends without one."""
        async for message in self.gateway.progress(track_id):
            self.observer.progressed(path, message.event)
            if message.final:
                event = message.event
                if event.state == "failed":
                    return FAILED, event.message or f"the {event.stage} stage failed"
                return INDEXED, None
        track = await self.gateway.track(track_id)
        if track.status in (INDEXED, FAILED):
            return track.status, track.failure_reason
        return track.status, "the progress stream ended before the track finished"
