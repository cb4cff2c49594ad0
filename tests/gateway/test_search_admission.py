"""Search admission: the index and catalog steps of a search wait for one of the gateway's
`search_concurrency` turns, and a worker embedding a search's example holds none.

The searches run through `SearchEngine` on services opened like the gateway's own (the same
NATS, catalog and vector index of the running stack), so the test can take every turn itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bench.scale import ScaleLibrary
from gateway.search.engine import SearchEngine
from gateway.services import Services
from schemas.api import SearchFilters, SearchRequest
from streams.names import QUERY_AUDIO_SUBJECT
from tests.encode import encode, tone
from tests.gateway.conftest import Gateway

TRACKS = 30
WAITED_S = 0.5  # a search that did not wait for its turn answers within milliseconds


@contextlib.asynccontextmanager
async def _services(gateway: Gateway) -> AsyncIterator[Services]:
    worker = gateway.worker
    async with Services.open(
        gateway.settings,
        worker.nats_url,
        worker.mongo_url,
        catalog=worker.catalog,
        vectors=worker.vectors,
    ) as services:
        yield services


@contextlib.asynccontextmanager
async def _every_turn_taken(services: Services) -> AsyncIterator[None]:
    turns = services.settings.search_concurrency
    for _ in range(turns):
        await services.searches.acquire()
    try:
        yield
    finally:
        for _ in range(turns):
            services.searches.release()


async def _library(gateway: Gateway, prefix: str) -> tuple[str, list[str]]:
    user, _ = await gateway.new_user(prefix)
    worker = gateway.worker
    assert worker.vectors is not None
    assert worker.catalog is not None
    library = ScaleLibrary(worker.vectors, worker.catalog, 11, TRACKS, tenant=user.user_id)
    await library.grow(TRACKS)
    return user.user_id, library.library.track_ids


async def test_a_search_waits_while_every_turn_is_taken(gateway: Gateway) -> None:
    tenant, track_ids = await _library(gateway, "admission")
    async with _services(gateway) as services:
        engine = SearchEngine(services, tenant)
        async with _every_turn_taken(services):
            similar = asyncio.create_task(engine.similar(track_ids[0], 5, SearchFilters()))
            search = asyncio.create_task(engine.search(SearchRequest(track_ids=track_ids[:2])))
            await asyncio.sleep(WAITED_S)
            assert not similar.done()
            assert not search.done()
        assert len((await similar).results) == 5
        assert (await search).results


async def test_a_worker_embeds_an_example_while_every_turn_is_taken(
    gateway: Gateway, tmp_path: Path
) -> None:
    tenant, _ = await _library(gateway, "admission-example")
    clip = encode(tmp_path / "clip.flac", tone(4.0, 22_050), 22_050, "flac")
    example = base64.b64encode(clip.read_bytes()).decode()
    async with _services(gateway) as services:
        engine = SearchEngine(services, tenant)
        asked = await gateway.nc.subscribe(QUERY_AUDIO_SUBJECT)  # sees what the workers see
        search = None
        try:
            async with _every_turn_taken(services):
                search = asyncio.create_task(engine.search(SearchRequest(audio_base64=example)))
                await asked.next_msg(timeout=30.0)  # the worker was asked, no turn was free
                assert not search.done()
            found = await search
        finally:
            await asked.unsubscribe()
            if search is not None and not search.done():
                search.cancel()
    assert found.inputs == ["audio"]
    assert found.results, found.notes
