"""Progress keeps flowing while searches run: the issue-13 promise, through the real gateway.

A user's library of synthetic tracks goes into the gateway's own vector index and catalog (the
embedded stack of `tonestream up`: Qdrant Edge in its owning process, SecantusDB); then bursts of
100 concurrent searches run through the HTTP API while a thread publishes progress events to
the user's SSE stream (bench.sse_burst). A search computing on the shared event loop would
hold every SSE arrival until it finished; the events must keep arriving during each burst.
How long the gaps are is a figure of the scale bench, not asserted here; what kept a full garbage
collection (200–350 ms with the loop stopped) out of them is.
"""

from __future__ import annotations

import gc

from bench.scale import ScaleLibrary
from bench.sse_burst import BURST, PUBLISH_EVERY_S, sse_during_bursts
from tests.gateway.conftest import Gateway

TRACKS = 600


async def test_progress_events_keep_arriving_during_search_bursts(gateway: Gateway) -> None:
    user, headers = await gateway.new_user("burst")
    worker = gateway.worker
    assert worker.vectors is not None
    assert worker.catalog is not None
    library = ScaleLibrary(worker.vectors, worker.catalog, 7, TRACKS, tenant=user.user_id)
    await library.grow(TRACKS)

    result = await sse_during_bursts(
        gateway.client,
        headers,
        nats_url=worker.nats_url,
        tenant=user.user_id,
        track_ids=library.library.track_ids,
        min_burst_s=1.0,
    )

    assert result.statuses == {200: BURST * len(result.windows)}
    for window in result.windows:
        assert window.arrivals > 0, window  # a burst that froze the loop would receive none
    published = result.burst_s / PUBLISH_EVERY_S
    arrived = sum(window.arrivals for window in result.windows)
    assert arrived >= published / 4, (arrived, published)  # they keep coming, not in a clump


async def test_the_serving_gateway_keeps_its_start_up_out_of_full_collections(
    gateway: Gateway,
) -> None:
    # the objects start-up made (app, stages, models) are frozen; a full collection walks the rest
    assert gc.get_freeze_count() > 50_000
    assert (await gateway.client.get("/health")).status_code == 200
