"""`GET /v1/tracks?sort=`: server-side order with cursor paging over HTTP, and a 400 with its
reason for a sort or cursor the list does not know. (Every sort's order and the paging edge
cases are in tests/integration/test_track_order.py; this is the route end to end.)
"""

from __future__ import annotations

import uuid

import msgspec

from schemas.api import TrackPage
from tests.gateway.conftest import Gateway


async def test_sorted_pages_over_http(gateway: Gateway) -> None:
    user, headers = await gateway.new_user("sort")
    catalog = gateway.worker.catalog
    assert catalog is not None
    tempos = [128.0, 90.0, None, 174.0, 120.0]  # None: not analysed yet
    ids: dict[str, float | None] = {}
    for number, bpm in enumerate(tempos):
        track_id = uuid.uuid4().hex
        fields = {"filename": f"t{number}.wav", "sha256": f"{number:064x}", "created_at": 1.0}
        await catalog.create_track(user.user_id, track_id, fields)
        if bpm is not None:
            await catalog.upsert_track(user.user_id, track_id, {"features": {"tempo_bpm": bpm}})
        ids[track_id] = bpm

    async def pages(sort: str) -> list[float | None]:
        found: list[float | None] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"sort": sort, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            response = await gateway.client.get("/v1/tracks", params=params, headers=headers)
            assert response.status_code == 200, response.text
            page = msgspec.json.decode(response.content, type=TrackPage)
            assert len(page.items) <= 2
            found += [track.tempo_bpm for track in page.items]
            if (cursor := page.next_cursor) is None:
                return found

    assert await pages("bpm") == [90.0, 120.0, 128.0, 174.0, None]
    assert await pages("-bpm") == [174.0, 128.0, 120.0, 90.0, None]

    unknown = await gateway.client.get("/v1/tracks", params={"sort": "loud"}, headers=headers)
    assert unknown.status_code == 400
    assert unknown.json()["extra"] == [  # the OpenAPI schema lists the sorts (an enum)
        {"message": "Invalid enum value 'loud'", "key": "sort", "source": "query"}
    ]
    first = await gateway.client.get(
        "/v1/tracks", params={"sort": "bpm", "limit": 1}, headers=headers
    )
    cursor = first.json()["next_cursor"]
    mixed = await gateway.client.get(
        "/v1/tracks", params={"sort": "-bpm", "cursor": cursor}, headers=headers
    )
    assert mixed.status_code == 400
    assert mixed.json()["detail"] == "this cursor pages sort=bpm, not sort=-bpm"
