""" "What is this clip?" answered by the workers that own the fingerprint index.

The gateway parks the clip in the blob store and asks over core NATS request/reply
(`tonestream.query.identify`, queue group): the clip is decoded by the decode stage's code and
hashed in this worker's DSP pool, then looked up in the index this worker's owning process keeps.
So the gateway never analyses audio nor opens the index (it has one owner), and the event loop
only awaits. Requests are answered concurrently, at most one per pool process at once; one that
waited longer than the query timeout for its turn is answered `unavailable` (its asker is gone).
"""

from __future__ import annotations

import asyncio
import functools
import time

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from handlers.decode.core import DecodeError
from handlers.jobs import fingerprint_example
from handlers.pool import WorkerPool
from schemas.queries import ClipMatch, IdentifyAnswer, IdentifyQuery, decode, encode
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore
from stores.fingerprint_store import FingerprintStore
from streams.names import QUERY_IDENTIFY_SUBJECT, QUERY_QUEUE

log = structlog.get_logger("query")
MAX_MATCHES = 20
_DECODE_MARGIN_S = 30.0  # the pool's time limit is a backstop: the decoder's own fires first


class IdentifyAnswers:
    def __init__(
        self, settings: Settings, blobs: BlobStore, pool: WorkerPool, store: FingerprintStore
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.pool = pool
        self.store = store

    async def answer(self, query: IdentifyQuery) -> IdentifyAnswer:
        settings = self.settings
        job = functools.partial(
            fingerprint_example,
            target_rate=settings.analysis_sample_rate,
            max_duration_s=min(settings.max_duration_s, settings.identify_max_s),
            timeout_s=settings.decode_timeout_s,
        )
        try:
            async with self.blobs.local_copy(query.blob_key) as path:
                hashes, times = await self.pool.run(
                    job, str(path), timeout_s=settings.decode_timeout_s + _DECODE_MARGIN_S
                )
        except DecodeError as exc:
            return IdentifyAnswer(error=exc.reason)
        except BlobNotFound:
            return IdentifyAnswer(error="the clip is missing from the blob store")
        if hashes.size == 0:
            return IdentifyAnswer(error="the clip has no landmarks to match (silent or too short)")
        found = await self.store.identify(
            query.tenant, hashes, times, limit=max(1, min(query.limit, MAX_MATCHES))
        )
        return IdentifyAnswer(
            matches=[
                ClipMatch(
                    track_id=m.track_id,
                    offset_s=m.offset_s,
                    confidence=m.confidence,
                    hits=m.hits,
                    coverage=m.coverage,
                )
                for m in found
            ]
        )


class IdentifyResponder:
    """Subscribes this worker to identify requests and answers each one."""

    def __init__(self, nc: Client, settings: Settings, answers: IdentifyAnswers) -> None:
        self.nc = nc
        self.settings = settings
        self.answers = answers
        self._slots = asyncio.Semaphore(answers.pool.size)
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(
            QUERY_IDENTIFY_SUBJECT, queue=QUERY_QUEUE, cb=self._receive
        )

    async def _receive(self, msg: Msg) -> None:
        task = asyncio.create_task(self._handle(msg, time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes) -> IdentifyAnswer:
        try:
            query = decode(data)
        except msgspec.DecodeError as exc:
            return IdentifyAnswer(error=f"invalid identify query: {exc}")
        if not isinstance(query, IdentifyQuery):
            return IdentifyAnswer(error=f"invalid identify query: got a {type(query).__name__}")
        try:
            return await self.answers.answer(query)
        except Exception as exc:  # the asker gets the reason, the log the traceback
            log.exception("identify_failed")
            return IdentifyAnswer(
                unavailable=f"identify failed on the worker: {type(exc).__name__}: {exc}"
            )

    async def _handle(self, msg: Msg, received: float) -> None:
        async with self._slots:
            waited = time.monotonic() - received
            if waited > self.settings.query_timeout_s:
                answer = IdentifyAnswer(
                    unavailable=f"waited {waited:.0f} s for a free fingerprint worker slot"
                )
            else:
                answer = await self._answer(msg.data)
        if msg.reply:
            try:
                await msg.respond(encode(answer))
            except Exception as exc:  # noqa: BLE001 - the asker times out; nothing else to do
                log.warning("query_reply_failed", kind="identify", error=str(exc))
        log.info(
            "query_answered",
            kind="identify",
            matches=len(answer.matches),
            reason=answer.error or answer.unavailable or None,
            seconds=round(time.monotonic() - received, 3),
        )

    async def stop(self) -> None:
        """Stop taking requests; those in flight get the query timeout to finish."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.settings.query_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
