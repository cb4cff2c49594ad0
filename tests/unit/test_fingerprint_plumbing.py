"""The fingerprint stage's place in the pipeline, without services: it never moves a track's
status, it reads `indexed` events, and duplicate links form groups."""

from __future__ import annotations

from typing import Any

from cli.main import build_parser
from gateway.controllers.identify import duplicate_groups
from schemas.events import Progress
from stores.catalog import PIPELINE_STATUSES, status_update
from streams.names import CHAIN_STAGES, FOLLOW_UP_STAGES, STAGE_INPUT, Stage, stage_filter


def test_fingerprint_follows_indexing_and_never_moves_the_status() -> None:
    assert Stage.FINGERPRINT in FOLLOW_UP_STAGES
    assert STAGE_INPUT[Stage.FINGERPRINT] == "indexed"
    assert stage_filter(Stage.FINGERPRINT) == "audio.indexed.*"
    assert list(CHAIN_STAGES) == [s for s in Stage if s is not Stage.FINGERPRINT]
    assert PIPELINE_STATUSES[-1] == "indexed"
    for state in ("started", "finished", "failed"):
        progress = Progress(track_id="t", tenant="u", stage="fingerprint", state=state)
        assert status_update(progress, 7) is None
    indexed = Progress(track_id="t", tenant="u", stage="indexing", state="finished")
    update = status_update(indexed, 8)
    assert update is not None
    assert update[1]["$set"]["status"] == "indexed"


def _doc(track_id: str, created: float, *duplicates: str) -> dict[str, Any]:
    return {"track_id": track_id, "created_at": created, "duplicates": list(duplicates)}


def test_duplicate_links_form_groups_oldest_first() -> None:
    docs = [
        _doc("a", 1, "b"),
        _doc("b", 2, "a", "c"),
        _doc("c", 3, "b"),
        _doc("e", 4, "f"),
        _doc("f", 5, "e"),
        _doc("g", 6, "gone"),  # its copy was deleted meanwhile: no group of one
    ]
    groups = [[doc["track_id"] for doc in group] for group in duplicate_groups(docs)]
    assert groups == [["a", "b", "c"], ["e", "f"]]


def test_cli_has_identify_and_tracks_duplicates() -> None:
    parser = build_parser()
    identify = parser.parse_args(["identify", "clip.m4a", "--limit", "3", "--json"])
    assert (identify.file, identify.limit, identify.json) == ("clip.m4a", 3, True)
    assert parser.parse_args(["tracks", "--duplicates"]).duplicates
    assert "fingerprint" in parser.parse_args(["worker", "fingerprint"]).stages
