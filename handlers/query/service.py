"""Workers answer search-example requests over core NATS request/reply, in a queue group.

One subscription per kind this worker can answer (semantic: it runs the embedding stage; audio:
it has the DSP pool). NATS runs a subscription's callbacks one after another, so the callback
only starts a task: requests are answered concurrently, at most `concurrency` per kind at once,
and a slow audio analysis holds up neither text queries nor other examples. A request that waited
longer than the query timeout for its turn is not worked on: its asker has given up.
Every request gets an answer — a vector, `error` (the example is at fault) or `unavailable`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from handlers.errors import PermanentError
from handlers.query.answers import AudioAnswers, SemanticAnswers
from schemas.queries import AudioQuery, QueryVector, SemanticQuery, decode, encode
from schemas.settings import Settings
from streams.names import QUERY_AUDIO_SUBJECT, QUERY_QUEUE, QUERY_SEMANTIC_SUBJECT

log = structlog.get_logger("query")

SEMANTIC_CONCURRENCY = 4  # one model process does the work; a few more overlap blob reads
Q = TypeVar("Q", bound=SemanticQuery | AudioQuery)


class _Kind(Generic[Q]):
    """One kind of request: where it arrives, what it carries, who answers, how many at once."""

    def __init__(
        self,
        name: str,
        subject: str,
        query_type: type[Q],
        answer: Callable[[Q], Awaitable[QueryVector]],
        concurrency: int,
    ) -> None:
        self.name = name
        self.subject = subject
        self.query_type: type[Q] = query_type
        self.answer: Callable[[Q], Awaitable[QueryVector]] = answer
        self.slots = asyncio.Semaphore(concurrency)

    async def respond(self, data: bytes) -> QueryVector:
        """The answer to one request; PermanentError when the request or its example is at fault."""
        try:
            query = decode(data)
        except msgspec.DecodeError as exc:
            raise PermanentError(f"invalid {self.name} query: {exc}") from None
        if not isinstance(query, self.query_type):
            raise PermanentError(f"invalid {self.name} query: got a {type(query).__name__}")
        return await self.answer(query)


AnyKind = _Kind[SemanticQuery] | _Kind[AudioQuery]


def _outcome(answer: QueryVector) -> str:
    if answer.error:
        return "error"
    return "unavailable" if answer.unavailable else "vector"


class QueryResponder:
    """Subscribes this worker to the query subjects it can answer and answers each request."""

    def __init__(
        self,
        nc: Client,
        settings: Settings,
        *,
        semantic: SemanticAnswers | None,
        audio: AudioAnswers | None,
    ) -> None:
        self.nc = nc
        self.settings = settings
        self.semantic = semantic
        self.kinds: list[AnyKind] = []
        if semantic is not None:
            self.kinds.append(
                _Kind(
                    "semantic",
                    QUERY_SEMANTIC_SUBJECT,
                    SemanticQuery,
                    semantic.answer,
                    SEMANTIC_CONCURRENCY,
                )
            )
        if audio is not None:
            self.kinds.append(
                _Kind("audio", QUERY_AUDIO_SUBJECT, AudioQuery, audio.answer, audio.dsp_pool.size)
            )
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.semantic is not None:
            self.semantic.start()
        for kind in self.kinds:
            self._subscriptions.append(
                await self.nc.subscribe(kind.subject, queue=QUERY_QUEUE, cb=self._receiver(kind))
            )

    def _receiver(self, kind: AnyKind) -> Callable[[Msg], Awaitable[None]]:
        async def receive(msg: Msg) -> None:
            task = asyncio.create_task(self._handle(kind, msg, time.monotonic()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return receive

    async def _handle(self, kind: AnyKind, msg: Msg, received: float) -> None:
        async with kind.slots:
            waited = time.monotonic() - received
            if waited > self.settings.query_timeout_s:
                answer = QueryVector(
                    unavailable=f"waited {waited:.0f} s for a free {kind.name} worker slot"
                )
            else:
                answer = await self._answer(kind, msg.data)
        if msg.reply:
            try:
                await msg.respond(encode(answer))
            except Exception as exc:  # noqa: BLE001 - the asker times out; nothing else to do
                log.warning("query_reply_failed", kind=kind.name, error=str(exc))
        log.info(
            "query_answered",
            kind=kind.name,
            outcome=_outcome(answer),
            reason=answer.error or answer.unavailable or None,
            seconds=round(time.monotonic() - received, 3),
        )

    async def _answer(self, kind: AnyKind, data: bytes) -> QueryVector:
        try:
            return await kind.respond(data)
        except PermanentError as exc:
            return QueryVector(error=exc.reason)
        except Exception as exc:  # the asker gets the reason, the log the traceback
            log.exception("query_failed", kind=kind.name)
            return QueryVector(
                unavailable=f"the {kind.name} query failed on the worker: "
                f"{type(exc).__name__}: {exc}"
            )

    async def stop(self) -> None:
        """Stop taking requests, give those in flight the query timeout to finish, then close."""
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions.clear()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.settings.query_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.semantic is not None:
            await self.semantic.close()
