"""The LLM provider chain against a real HTTP server speaking the chat-completions protocol.

Each provider is a path on one local server: /good/v1 answers well, /fenced/v1 wraps its JSON in a
Markdown fence, /slow/v1 answers after the client's timeout, /garbage/v1 answers prose,
/invalid/v1 answers JSON that breaks the schema and /error/v1 answers HTTP 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from handlers.tagging.llm import LLMTagger, MemoryTagCache, TagCache, TaggingUnavailable
from handlers.tagging.prompt import (
    MODEL_TAGS_IN_PROMPT,
    SYSTEM_PROMPT,
    ReplyError,
    build_messages,
    feature_digest,
    parse_reply,
)
from handlers.tagging.ratelimit import TokenBucket
from schemas.settings import LLMProvider
from tests.factories import make_features as features
from tests.factories import make_scores

TIMEOUT_S = 0.3
GOOD_TAGS = {
    "mood": ["Energetic", " tense ", "energetic"],
    "genre": ["Techno"],
    "energy": "High",
    "brightness": "bright",
    "tempo_class": "fast",
    "description": "Driving minor-key techno with a bright top end.",
}


class FakeLLMServer(ThreadingHTTPServer):
    """Records every request; `release` ends the slow provider's wait at teardown."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.release = threading.Event()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{kind}/v1"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        kind, _, rest = self.path.strip("/").partition("/")
        good = json.dumps(GOOD_TAGS)
        contents = {
            "good": good,
            "fenced": f"```json\n{good}\n```",
            "garbage": "I would call this one jazz, probably.",
            "invalid": json.dumps(GOOD_TAGS | {"energy": "extreme"}),
        }
        if rest != "v1/chat/completions" or kind not in {*contents, "slow", "error"}:
            self._send(HTTPStatus.NOT_FOUND, {"error": {"message": "no such route"}})
        elif kind == "error":
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {"message": "overloaded"}})
        else:
            if kind == "slow":
                self.server.release.wait(timeout=2.0)
            self._send(HTTPStatus.OK, _completion(body["model"], contents.get(kind, good)))

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the slow provider); nothing left to tell it

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    httpd = FakeLLMServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


MakeTagger = Callable[..., LLMTagger]


@pytest.fixture
async def make_tagger(server: FakeLLMServer) -> AsyncIterator[MakeTagger]:
    """Build taggers over provider kinds ("good", "slow", …, or (name, kind, api_key))."""
    made: list[LLMTagger] = []

    def make(*kinds: str | tuple[str, str, str], **options: Any) -> LLMTagger:
        providers: list[LLMProvider] = []
        for entry in kinds:
            name, kind, api_key = entry if isinstance(entry, tuple) else (entry, entry, "")
            providers.append(
                LLMProvider(
                    name=name, base_url=server.url(kind), model=f"{kind}-model", api_key=api_key
                )
            )
        settings = {"timeout_s": TIMEOUT_S, "requests_per_minute": 600.0} | options
        tagger = LLMTagger(providers, **settings)
        made.append(tagger)
        return tagger

    yield make
    for tagger in made:
        await tagger.aclose()


async def test_good_provider_gives_validated_tags_naming_the_provider(
    make_tagger: MakeTagger,
) -> None:
    tags = await make_tagger("good").tag(features(), filename="track.wav")
    assert tags.source == "llm:good/good-model"
    assert tags.mood == ["energetic", "tense"]
    assert tags.genre == ["techno"]
    assert (tags.energy, tags.brightness, tags.tempo_class) == ("high", "bright", "fast")
    assert tags.description == GOOD_TAGS["description"]


async def test_request_speaks_the_chat_completions_protocol(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger(("secured", "error", "sk-test"), "good")
    await tagger.tag(features(tempo_bpm=128.0), filename="night drive.flac")
    (path, headers, body), (_, open_headers, _) = server.requests
    assert path == "/error/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert "Authorization" not in open_headers
    assert headers["Content-Type"] == "application/json"
    assert body["model"] == "error-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert "night drive.flac" in user["content"]
    assert '"tempo_bpm":128.0' in user["content"]


async def test_chain_falls_back_in_order_past_failing_providers(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger("slow", "garbage", "invalid", "error", "fenced", "good")
    started = time.monotonic()
    tags = await tagger.tag(features())
    elapsed = time.monotonic() - started
    assert tags.source == "llm:fenced/fenced-model"
    kinds = ["slow", "garbage", "invalid", "error", "fenced"]
    assert server.paths() == [f"/{kind}/v1/chat/completions" for kind in kinds]
    assert elapsed < 1.5  # the slow provider was cut off at its timeout, not waited out


async def test_every_provider_failing_raises_tagging_unavailable(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger("error", "garbage", "slow")
    with pytest.raises(TaggingUnavailable) as caught:
        await tagger.tag(features())
    assert "error: HTTP 500" in caught.value.reason
    assert "garbage: invalid tags" in caught.value.reason
    assert f"slow: no answer within {TIMEOUT_S:g} s" in caught.value.reason
    with pytest.raises(TaggingUnavailable):
        await tagger.tag(features())  # failures are not cached: the chain is asked again
    assert len(server.requests) == 6


async def test_no_providers_is_unavailable_without_a_request(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    with pytest.raises(TaggingUnavailable, match="no LLM providers"):
        await make_tagger().tag(features())
    assert server.requests == []


async def test_same_features_are_answered_from_the_cache(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    cache = MemoryTagCache()
    first = await make_tagger("good", cache=cache).tag(features(), filename="a.wav")
    again = await make_tagger("good", cache=cache).tag(features(), filename="b.wav")
    assert again == first
    assert len(server.requests) == 1
    await make_tagger("good", cache=cache).tag(features(tempo_bpm=111.0))
    assert len(server.requests) == 2


async def test_unreadable_cache_entry_is_a_miss(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    cache: TagCache = MemoryTagCache()
    await cache.put(feature_digest(features()), b"not json")
    tags = await make_tagger("good", cache=cache).tag(features())
    assert tags.source == "llm:good/good-model"
    assert len(server.requests) == 1


async def test_rate_limited_provider_fails_fast_when_the_wait_exceeds_the_timeout(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger("good", requests_per_minute=6.0, burst=1)  # next token in 10 s
    await tagger.tag(features())
    started = time.monotonic()
    with pytest.raises(TaggingUnavailable, match="rate limited"):
        await tagger.tag(features(tempo_bpm=140.0))
    assert time.monotonic() - started < TIMEOUT_S  # refused at once, not slept on
    assert len(server.requests) == 1


async def test_rate_limited_provider_fails_over_to_the_next(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger(("a", "good", ""), ("b", "good", ""), requests_per_minute=6.0, burst=1)
    first = await tagger.tag(features())
    second = await tagger.tag(features(tempo_bpm=140.0))
    assert (first.source, second.source) == ("llm:a/good-model", "llm:b/good-model")
    assert len(server.requests) == 2


async def test_rate_limit_waits_for_a_token_within_the_timeout(
    make_tagger: MakeTagger, server: FakeLLMServer
) -> None:
    tagger = make_tagger("good", requests_per_minute=240.0, burst=1, timeout_s=2.0)  # 0.25 s/token
    await tagger.tag(features())
    started = time.monotonic()
    tags = await tagger.tag(features(tempo_bpm=140.0))
    assert time.monotonic() - started >= 0.15
    assert tags.source == "llm:good/good-model"
    assert len(server.requests) == 2


def test_token_bucket_allows_a_burst_then_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(rate_per_s=2.0, capacity=2, clock=lambda: now[0])
    assert [bucket.reserve(max_wait_s=0.0), bucket.reserve(max_wait_s=0.0)] == [0.0, 0.0]
    assert bucket.reserve(max_wait_s=0.1) is None  # needs 0.5 s: refused, nothing taken
    assert bucket.reserve(max_wait_s=1.0) == pytest.approx(0.5)
    assert bucket.reserve(max_wait_s=2.0) == pytest.approx(1.0)  # queued behind the last one
    now[0] = 10.0
    assert bucket.reserve(max_wait_s=0.0) == 0.0  # refilled, but only up to capacity
    assert bucket.reserve(max_wait_s=0.0) == 0.0
    assert bucket.reserve(max_wait_s=0.0) is None


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryTagCache(max_entries=2)
    await cache.put("a", b"1")
    await cache.put("b", b"2")
    assert await cache.get("a") == b"1"
    await cache.put("c", b"3")
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (b"1", None, b"3")
    assert len(cache) == 2


def test_feature_digest_is_stable_and_tracks_every_feature() -> None:
    digest = feature_digest(features())
    assert digest == feature_digest(features())
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest != feature_digest(features(chroma_std=[0.2] * 12))


def _reply(**changes: Any) -> str:
    return json.dumps(GOOD_TAGS | changes)


@pytest.mark.parametrize(
    "content",
    [
        _reply(energy="extreme"),
        _reply(tempo_class="brisk"),
        _reply(mood=[]),
        _reply(mood=["  "]),
        _reply(mood=[{"word": "sad"}]),
        _reply(description=""),
        _reply(description="x" * 301),
        _reply(genre=["a", "b", "c", "d", "e", "f", "g"]),
        json.dumps({k: v for k, v in GOOD_TAGS.items() if k != "brightness"}),
        json.dumps([GOOD_TAGS]),
        "Sure! Here are the tags: energetic",
        "```json\n{broken\n```",
    ],
)
def test_replies_outside_the_schema_are_rejected(content: str) -> None:
    with pytest.raises(ReplyError):
        parse_reply(content)


def test_reply_tolerates_fences_case_and_extra_keys() -> None:
    reply = parse_reply(f"```JSON\n{_reply(confidence=0.9, tempo_class=' Very Fast ')}\n```")
    assert reply.tempo_class == "very fast"
    assert reply.energy == "high"
    assert reply.mood == ["energetic", "tense"]


def test_the_prompt_shows_the_strongest_model_tags_and_they_key_the_cache() -> None:
    scores = make_scores(msd={"jazz": 0.61, "instrumental": 0.4}, mtt={"piano": 0.83})
    user = build_messages(features(), "take five.flac", scores)[1]["content"]
    shown = json.loads(user.split("Model tags: ", 1)[1])
    assert list(shown["msd"])[:2] == ["jazz", "instrumental"]
    assert shown["mtt"]["piano"] == 0.83
    assert len(shown["msd"]) == len(shown["mtt"]) == MODEL_TAGS_IN_PROMPT
    assert "Model tags" not in build_messages(features(), "x.flac")[1]["content"]
    other = make_scores(msd={"rock": 0.7})
    assert feature_digest(features(), scores) != feature_digest(features(), other)
    assert feature_digest(features(), scores) != feature_digest(features())
