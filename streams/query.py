"""The gateway's side of search-example requests: ask a worker for the vector of a text, an image
or an audio clip over core NATS request/reply (a queue group spreads requests over the workers).

Search must degrade, not fail, when no worker can answer: "no responders" (no worker of that
kind is connected — the server says so at once) and timeouts come back as an `unavailable`
answer with the reason, never as an exception.
"""

from __future__ import annotations

import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError

from schemas.queries import (
    AudioQuery,
    IdentifyAnswer,
    IdentifyQuery,
    QueryVector,
    SemanticQuery,
    decode,
    encode,
)
from streams.names import QUERY_AUDIO_SUBJECT, QUERY_IDENTIFY_SUBJECT, QUERY_SEMANTIC_SUBJECT


async def request_semantic_vector(
    nc: Client, query: SemanticQuery, timeout_s: float
) -> QueryVector:
    """The CLIP vector of a text or a parked image, from a worker running the embedding stage."""
    return await _request(nc, QUERY_SEMANTIC_SUBJECT, "semantic", query, timeout_s)


async def request_audio_vector(nc: Client, query: AudioQuery, timeout_s: float) -> QueryVector:
    """The audio vector of a parked clip, from a worker running the decode or features stage."""
    return await _request(nc, QUERY_AUDIO_SUBJECT, "audio", query, timeout_s)


async def _request(
    nc: Client, subject: str, kind: str, query: SemanticQuery | AudioQuery, timeout_s: float
) -> QueryVector:
    try:
        reply = await nc.request(subject, encode(query), timeout=timeout_s)
    except NoRespondersError:
        return QueryVector(unavailable=f"no {kind} worker answered: none is connected")
    except TimeoutError:  # nats.errors.TimeoutError is one
        return QueryVector(unavailable=f"no {kind} worker answered within {timeout_s:g} s")
    try:
        answer = decode(reply.data)
    except msgspec.DecodeError as exc:  # a worker of another version, say
        return QueryVector(unavailable=f"the {kind} worker's answer is unreadable: {exc}")
    if not isinstance(answer, QueryVector):
        return QueryVector(unavailable=f"the {kind} worker answered with a {type(answer).__name__}")
    return answer


async def request_identify(nc: Client, query: IdentifyQuery, timeout_s: float) -> IdentifyAnswer:
    """The tracks a parked clip was found in, from a worker running the fingerprint stage."""
    try:
        reply = await nc.request(QUERY_IDENTIFY_SUBJECT, encode(query), timeout=timeout_s)
    except NoRespondersError:
        return IdentifyAnswer(unavailable="no fingerprint worker answered: none is connected")
    except TimeoutError:
        return IdentifyAnswer(unavailable=f"no fingerprint worker answered within {timeout_s:g} s")
    try:
        answer = decode(reply.data)
    except msgspec.DecodeError as exc:
        return IdentifyAnswer(unavailable=f"the fingerprint worker's answer is unreadable: {exc}")
    if not isinstance(answer, IdentifyAnswer):
        return IdentifyAnswer(
            unavailable=f"the fingerprint worker answered with a {type(answer).__name__}"
        )
    return answer
