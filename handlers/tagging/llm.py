"""LLM tagger: an ordered chain of OpenAI-compatible chat-completions endpoints.

Any endpoint answering POST {base_url}/chat/completions works (OpenAI, Ollama, vLLM, llama.cpp,
Gemini's OpenAI-compatible API). Each provider gets one bounded attempt — rate-limit wait plus
request within `timeout_s` — and an HTTP error, a timeout or a reply that fails the schema all
count as that provider failing, so the next one is asked. Answers are cached by feature digest.
When no provider answers, `TaggingUnavailable` tells the caller, who decides what to do (the
handler falls back to the heuristic tagger).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Annotated, Any

import httpx
import msgspec
import structlog
from nats.aio.client import Client

from handlers.tagging.cache import MemoryTagCache, TagCache
from handlers.tagging.prompt import (
    ReplyError,
    TagReply,
    build_messages,
    feature_digest,
    parse_reply,
)
from handlers.tagging.ratelimit import TokenBucket
from schemas.payloads import Features, Tags, TagScores
from schemas.settings import LLMProvider, Settings
from streams.kv import KVTagCache

__all__ = [
    "LLMTagger",
    "MemoryTagCache",
    "TagCache",
    "TaggingUnavailable",
    "feature_digest",
]

DEFAULT_BURST = 2

log = structlog.get_logger(__name__)


class TaggingUnavailable(Exception):  # noqa: N818 (the name says what the caller handles)
    """No LLM provider produced valid tags; `reason` says why, per provider."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ProviderError(Exception):
    """One provider's attempt failed; the chain moves on to the next."""


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    """The part of a chat-completions response body we read."""

    choices: Annotated[list[_Choice], msgspec.Meta(min_length=1)]


class LLMTagger:
    """Tags features by asking `providers` in order; one token bucket per provider.

    `burst` is the bucket capacity: how many requests may go out back to back before
    `requests_per_minute` paces them. Pass `client` to share an httpx client (it is then not
    closed by `aclose`).
    """

    def __init__(
        self,
        providers: Sequence[LLMProvider],
        *,
        timeout_s: float,
        requests_per_minute: float,
        cache: TagCache | None = None,
        client: httpx.AsyncClient | None = None,
        burst: int = DEFAULT_BURST,
    ) -> None:
        self._providers = tuple(providers)
        self._timeout_s = timeout_s
        self._buckets = [
            TokenBucket(rate_per_s=requests_per_minute / 60.0, capacity=burst)
            for _ in self._providers
        ]
        self._cache: TagCache = cache if cache is not None else MemoryTagCache()
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def tag(
        self, features: Features, *, filename: str = "", scores: TagScores | None = None
    ) -> Tags:
        """Cached tags for these features and model tags, else the first provider's valid answer
        (the models' `scores` are shown to the LLM; the caller attaches them to the Tags)."""
        key = feature_digest(features, scores)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        if not self._providers:
            raise TaggingUnavailable("no LLM providers configured")
        messages = build_messages(features, filename, scores)
        failures: list[str] = []
        for provider, bucket in zip(self._providers, self._buckets, strict=True):
            try:
                reply = await self._ask(provider, bucket, messages)
            except _ProviderError as exc:
                log.warning(
                    "llm_provider_failed",
                    provider=provider.name,
                    model=provider.model,
                    reason=str(exc),
                )
                failures.append(f"{provider.name}: {exc}")
                continue
            tags = reply.to_tags(source=f"llm:{provider.name}/{provider.model}")
            await self._cache.put(key, msgspec.json.encode(tags))
            return tags
        raise TaggingUnavailable("every LLM provider failed — " + "; ".join(failures))

    async def _cached(self, key: str) -> Tags | None:
        raw = await self._cache.get(key)
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=Tags)
        except msgspec.DecodeError as exc:
            log.warning("llm_cache_entry_unreadable", key=key, reason=str(exc))
            return None

    async def _ask(
        self, provider: LLMProvider, bucket: TokenBucket, messages: list[dict[str, str]]
    ) -> TagReply:
        """One bounded attempt: the token wait and the request share the `timeout_s` budget."""
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        if not await bucket.acquire(max_wait_s=self._timeout_s):
            raise _ProviderError(f"rate limited: no request slot within {self._timeout_s:g} s")
        body: dict[str, Any] = {
            "model": provider.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        headers = {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
        url = provider.base_url.rstrip("/") + "/chat/completions"
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.post(url, json=body, headers=headers)
        except TimeoutError:
            raise _ProviderError(f"no answer within {self._timeout_s:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _ProviderError(f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise _ProviderError(f"HTTP {response.status_code}")
        try:
            completion = msgspec.json.decode(response.content, type=_Completion)
        except msgspec.DecodeError as exc:
            raise _ProviderError(f"not a chat completion: {exc}") from None
        content = completion.choices[0].message.content
        if content is None:
            raise _ProviderError("reply has no message content")
        try:
            return parse_reply(content)
        except ReplyError as exc:
            raise _ProviderError(f"invalid tags: {exc}") from None


async def open_llm_tagger(
    settings: Settings, nc: Client, cleanup: contextlib.AsyncExitStack
) -> LLMTagger | None:
    """The worker's LLM tagger when `tagger` is "llm" (cache: the TAG_CACHE bucket), closed by
    `cleanup`; None for the heuristic tagger."""
    if settings.tagger != "llm":
        return None
    tagger = LLMTagger(
        settings.llm_providers,
        timeout_s=settings.llm_timeout_s,
        requests_per_minute=settings.llm_requests_per_minute,
        cache=await KVTagCache.open(nc.jetstream()),
    )
    cleanup.push_async_callback(tagger.aclose)
    return tagger
