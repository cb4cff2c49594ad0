"""The catalog's query shapes: flat filters the embedded server can route through an index."""

from __future__ import annotations

from schemas.api import SearchFilters
from schemas.events import Progress
from stores.catalog import stage_update, status_update
from stores.catalog_queries import index_shaped, track_query
from stores.catalog_slices import MAX_WIDEN, next_width


def test_a_filtered_listing_is_one_flat_document() -> None:
    filters = SearchFilters(tempo_min=100, tempo_max=120, key="C")
    query = track_query("alice", filters, words=["calm"], status="indexed")
    slice_ = {"created_at": {"$lte": 50.0, "$gt": 10.0}}
    assert index_shaped({"$and": [slice_, *query["$and"]]}) == {
        "created_at": {"$lte": 50.0, "$gt": 10.0},  # the comparison already needs the field
        "tenant": "alice",
        "features.tempo_bpm": {"$gte": 100.0, "$lte": 120.0},
        "features.key": "C",
        "keywords": {"$all": ["calm"]},
        "status": "indexed",
    }
    assert list(index_shaped(query)) == [
        "tenant", "created_at", "features.tempo_bpm", "features.key", "keywords", "status"
    ]  # fmt: skip


def test_conditions_that_do_not_merge_stay_in_an_and() -> None:
    shaped = index_shaped(
        {"$and": [{"a": {"$lt": 3}}, {"a": {"$lt": 5}}, {"$or": [{"b": 1}, {"c": 2}]}, {"a": 1}]}
    )
    assert shaped == {
        "a": {"$lt": 3},
        "$and": [{"a": {"$lt": 5}}, {"$or": [{"b": 1}, {"c": 2}]}, {"a": 1}],
    }
    assert index_shaped({"x": "y"}) == {"x": "y"}
    tie = index_shaped({"$and": [{"created_at": 4.0}, {"created_at": {"$exists": True}}]})
    assert tie == {"created_at": 4.0}
    text = {"$and": [{"created_at": "4"}, {"created_at": {"$exists": True}}]}
    assert index_shaped(text) == {"created_at": "4", "$and": [{"created_at": {"$exists": True}}]}


def test_slices_widen_with_the_density_seen() -> None:
    assert next_width(10.0, 0, 51, 0.0, 1.0, last=None) == 10.0  # nothing yet: as wide again
    assert next_width(10.0, 25, 26, 4.0, 1.0, last=None) == 6.24  # 26 more at 25 per 4, a margin
    assert next_width(1e8, 50, 1, 49.0, 1.0, last=None) == 1.47  # their own spread, not the span
    assert next_width(10.0, 50, 1, 0.0, 1.0, last=None) == 1.0  # all on one value: the least step
    assert next_width(10.0, 1, 1000, 10.0, 1.0, last=None) == MAX_WIDEN * 10.0
    assert next_width(10.0, 50, 1, 0.0, 1.0, last=3.0) == 6.0  # after an empty slice: twice it


def test_guarded_track_updates_lead_with_the_track_id() -> None:
    """A progress event's updates carry conditions beside the key (stale-event and status
    guards); the embedded server then looks up the first field with an index of its own, so
    the track id must come first (led by the tenant, each event read the tenant's whole library:
    124 ms instead of 5 ms per update at 2,000 tracks)."""
    for state in ("started", "finished", "failed"):
        progress = Progress(track_id="t1", tenant="alice", stage="decode", state=state)
        updates = [stage_update(progress, 7), status_update(progress, 7)]
        for found in updates:
            if found is not None:
                query, _ = found
                assert list(query)[:2] == ["track_id", "tenant"], query
