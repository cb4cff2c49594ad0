"""Running searches for one tenant: each input becomes a ranking, the rankings are fused.

- tracks: the mean of the given tracks' `audio` vectors, nearest neighbours excluding them;
- audio example: parked as a blob, turned into an `audio` vector by a worker, then the same;
- text: a CLIP vector from a worker → `semantic` neighbours; without CLIP, music words and
  metadata over the catalog (stores.text_search), ranked by tag scores (the response says so);
- image: a CLIP vector from a worker → `semantic` neighbours (needs CLIP; otherwise a note).
Every mode takes the same filters and only ever sees the tenant's own tracks.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import msgspec

from gateway.errors import ClientException, ConflictError, NotFoundException, UnprocessableError
from gateway.search.fusion import fuse
from gateway.services import Services
from gateway.views import track_summary
from schemas.api import SearchFilters, SearchHit, SearchInput, SearchRequest, SearchResults
from schemas.queries import AudioQuery, QueryVector, SemanticQuery
from stores.catalog_queries import keywords
from stores.text_search import parse
from stores.vectors import AUDIO, SEMANTIC, NotIndexedError
from streams.names import query_blob_key
from streams.query import request_audio_vector, request_semantic_vector

MAX_K = 200
MAX_TRACK_INPUTS = 50
MAX_EXAMPLE_BYTES = 8 << 20


def candidates(k: int) -> int:
    """How deep each input ranks before fusion: deeper than k, so fusion has overlap to find."""
    return min(max(4 * k, 50), 500)


@dataclass(slots=True)
class _Rankings:
    lists: dict[str, list[str]] = field(default_factory=dict)  # input name → track ids
    scores: dict[str, float] = field(default_factory=dict)  # single-input scores (cosine)
    notes: list[str] = field(default_factory=list)
    text_mode: Literal["semantic", "keyword"] | None = None


@dataclass(frozen=True, slots=True)
class _Vector:
    """An input a worker turned into a vector of the index."""

    name: SearchInput
    vector_name: str
    vector: list[float]


def _decode_example(name: str, data: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ClientException(detail=f"{name}_base64 is not valid base64") from None
    if not raw:
        raise ClientException(detail=f"{name}_base64 is empty")
    if len(raw) > MAX_EXAMPLE_BYTES:
        raise ClientException(detail=f"{name} example exceeds {MAX_EXAMPLE_BYTES} bytes")
    return raw


class SearchEngine:
    def __init__(self, services: Services, tenant: str) -> None:
        self.services = services
        self.tenant = tenant

    # -- rankings --------------------------------------------------------------------------
    async def _nearest(
        self,
        vector_name: str,
        vector: list[float],
        depth: int,
        filters: SearchFilters,
    ) -> list[tuple[str, float]]:
        hits = await self.services.vectors.search(
            self.tenant,
            vector_name,
            vector,
            depth,
            filters=msgspec.structs.asdict(filters),
        )
        return [(hit.track_id, hit.score) for hit in hits]

    async def _not_indexed(self, track_ids: list[str]) -> ClientException:
        """404 for a track id that is not the tenant's, 409 for one not indexed yet."""
        for track_id in track_ids:
            if await self.services.catalog.get_uploaded_track(self.tenant, track_id) is None:
                return NotFoundException(detail=f"no track {track_id}")
        return ConflictError(
            detail=f"track {', '.join(track_ids)} is not indexed yet; try again when it is"
        )

    async def _with_parked_blob(
        self, data: bytes, ask: Callable[[str], Awaitable[QueryVector]]
    ) -> QueryVector:
        key = query_blob_key(self.tenant, uuid.uuid4().hex)
        await self.services.blobs.put_bytes(key, data)
        try:
            return await ask(key)
        finally:
            await self.services.blobs.delete(key)

    async def _semantic(self, query: SemanticQuery) -> QueryVector:
        return await request_semantic_vector(
            self.services.nc, query, self.services.settings.query_timeout_s
        )

    @staticmethod
    def _record(out: _Rankings, name: SearchInput, hits: list[tuple[str, float]]) -> None:
        out.lists[name] = [track_id for track_id, _ in hits]
        out.scores.update(hits)

    async def _text_vector(self, text: str, out: _Rankings) -> list[_Vector]:
        """The text's CLIP vector; without one, the note that it is matched by keywords."""
        answer = await self._semantic(SemanticQuery(text=text))
        if answer.vector is not None:
            out.text_mode = "semantic"
            return [_Vector("text", SEMANTIC, answer.vector)]
        out.text_mode = "keyword"
        matched = "; ".join(term.describe() for term in parse(keywords(text)))
        out.notes.append(
            f"semantic search unavailable ({answer.unavailable or answer.error}); text was "
            f"matched offline by music words and metadata ({matched}), ranked by tag scores"
        )
        return []

    async def _keyword_ranking(
        self, text: str, depth: int, filters: SearchFilters, out: _Rankings
    ) -> None:
        found = await self.services.catalog.keyword_search(
            self.tenant, keywords(text), filters, depth
        )
        self._record(out, "text", [(doc["track_id"], score) for doc, score in found])

    async def _example_vector(
        self,
        name: SearchInput,
        example: bytes,
        ask: Callable[[str], Awaitable[QueryVector]],
        vector_name: str,
        out: _Rankings,
    ) -> list[_Vector]:
        """An image or audio example: parked as a blob, turned into a vector by a worker."""
        answer = await self._with_parked_blob(example, ask)
        if answer.error:
            raise UnprocessableError(detail=f"{name} example: {answer.error}")
        if answer.vector is None:
            out.notes.append(f"{name} example search unavailable: {answer.unavailable}")
            return []
        return [_Vector(name, vector_name, answer.vector)]

    async def _vectors(self, request: SearchRequest, out: _Rankings) -> list[_Vector]:
        """What the workers make of the examples and the text, in input order."""
        found: list[_Vector] = []
        if request.audio_base64:
            audio = _decode_example("audio", request.audio_base64)
            found += await self._example_vector("audio", audio, self._ask_audio, AUDIO, out)
        if request.image_base64:
            image = _decode_example("image", request.image_base64)
            found += await self._example_vector("image", image, self._ask_image, SEMANTIC, out)
        if request.text and request.text.strip():
            found += await self._text_vector(request.text.strip(), out)
        return found

    def _ask_image(self, key: str) -> Awaitable[QueryVector]:
        return self._semantic(SemanticQuery(image_key=key))

    def _ask_audio(self, key: str) -> Awaitable[QueryVector]:
        return request_audio_vector(
            self.services.nc, AudioQuery(blob_key=key), self.services.settings.query_timeout_s
        )

    async def _tracks_ranking(
        self, track_ids: list[str], depth: int, filters: SearchFilters, out: _Rankings
    ) -> None:
        try:
            hits = await self.services.vectors.search_like(
                self.tenant, track_ids, depth, filters=msgspec.structs.asdict(filters)
            )
        except NotIndexedError as missing:
            raise await self._not_indexed(missing.track_ids) from None
        self._record(out, "tracks", [(hit.track_id, hit.score) for hit in hits])

    # -- public ----------------------------------------------------------------------------
    async def _results(
        self,
        out: _Rankings,
        weights: dict[str, float],
        k: int,
        inputs: list[SearchInput],
        exclude: list[str] | None = None,
    ) -> SearchResults:
        """The fused hits; tracks given as inputs are never their own results."""
        if exclude:
            out.lists = {
                name: [track_id for track_id in ranking if track_id not in exclude]
                for name, ranking in out.lists.items()
            }
        fused = fuse(out.lists, weights, k)
        single = len(out.lists) == 1
        documents = await self.services.catalog.get_tracks(
            self.tenant, [hit.track_id for hit in fused]
        )
        hits = [
            SearchHit(
                track_id=hit.track_id,
                score=round(out.scores[hit.track_id] if single else hit.score, 6),
                matched=cast("list[SearchInput]", list(hit.matched)),
                track=track_summary(documents[hit.track_id]),
            )
            for hit in fused
            if hit.track_id in documents  # deleted since it was indexed
        ]
        return SearchResults(
            results=hits,
            inputs=inputs,
            text_mode=out.text_mode,
            notes=out.notes,
        )

    async def similar(self, track_id: str, k: int, filters: SearchFilters) -> SearchResults:
        out = _Rankings()
        async with self.services.searches:
            await self._tracks_ranking([track_id], candidates(k), filters, out)
            return await self._results(out, {}, k, ["tracks"])

    async def search(self, request: SearchRequest) -> SearchResults:
        """Workers embed the examples and the text first, holding no turn (a busy worker takes
        up to `query_timeout_s`); the index and catalog steps wait for one of
        `search_concurrency` turns, so a burst waits at the door, not in every loop pass."""
        inputs = _check(request)
        depth, filters, out = candidates(request.k), request.filters, _Rankings()
        vectors = await self._vectors(request, out)
        async with self.services.searches:
            if request.track_ids:
                await self._tracks_ranking(request.track_ids, depth, filters, out)
            for query in vectors:
                hits = await self._nearest(query.vector_name, query.vector, depth, filters)
                self._record(out, query.name, hits)
            if out.text_mode == "keyword" and request.text:
                await self._keyword_ranking(request.text.strip(), depth, filters, out)
            if not out.lists:
                raise UnprocessableError(
                    detail="none of the search inputs could be used: " + "; ".join(out.notes),
                )
            weights: dict[str, Any] = msgspec.structs.asdict(request.weights)
            return await self._results(out, weights, request.k, inputs, request.track_ids)


def _check(request: SearchRequest) -> list[SearchInput]:
    """The inputs present; 400 for no input, bad k, negative weights or too many track ids."""
    if not 1 <= request.k <= MAX_K:
        raise ClientException(detail=f"k must be between 1 and {MAX_K}")
    if any(weight < 0 for weight in msgspec.structs.astuple(request.weights)):
        raise ClientException(detail="weights must not be negative")
    if len(request.track_ids) > MAX_TRACK_INPUTS:
        raise ClientException(detail=f"at most {MAX_TRACK_INPUTS} track_ids per search")
    present: list[tuple[SearchInput, object]] = [
        ("text", request.text and request.text.strip()),
        ("image", request.image_base64),
        ("audio", request.audio_base64),
        ("tracks", request.track_ids),
    ]
    inputs = [name for name, value in present if value]
    if not inputs:
        raise ClientException(
            detail="give at least one of text, image_base64, audio_base64, track_ids"
        )
    return inputs
