"""Sorted track lists paged by cursor on the real catalog server (SecantusDB): every sort, read a
few tracks at a time, yields each of the tenant's tracks exactly once, in the order a plain
Python sort of the same documents gives — ties broken by track id, tracks without a value last
in both directions, text compared alphabetically (accents and case set aside; the track id
breaks their ties).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import AsyncIterator, Callable
from typing import Any, get_args

import pytest

from gateway.views import SUMMARY_FIELDS, track_summary
from schemas.api import SearchFilters
from stores.catalog import Catalog
from stores.catalog_order import (
    COLUMNS,
    InvalidCursorError,
    InvalidSortError,
    SortName,
    parse_sort,
)

Document = dict[str, Any]
NO_FILTERS = SearchFilters()
TEXT_FIELDS = {
    "title": "audio.metadata.title",
    "artist": "audio.metadata.artist",
    "filename": "filename",
}
TITLES = ["apple", "Apple", "banana", "Zed", "zed", "a b", "ab", "b2", "B10", "", None]


@pytest.fixture
async def catalog(mongo_server: str, unique_name: Callable[[str], str]) -> AsyncIterator[Catalog]:
    catalog = await Catalog.open(mongo_server, unique_name("order"))
    await catalog.ensure_indexes()
    try:
        yield catalog
    finally:
        await catalog.client.drop_database(catalog.db.name)
        await catalog.close()


def _documents(tenant: str, count: int, seed: int) -> list[Document]:
    """Tracks with repeated values (ties), some not analysed yet, some without title tags."""
    rng = random.Random(seed)
    documents = []
    for number in range(count):
        track_id = f"{rng.getrandbits(128):032x}"
        doc: Document = {
            "filename": rng.choice(["Night.wav", "night.wav", "b.flac", "Ärger.mp3", "a b.ogg"]),
            "sha256": f"{number:064x}",
            "created_at": 1000.0 + rng.choice([0, 1, 2]),  # many uploads in the same second
        }
        if rng.random() < 0.8:  # analysed
            doc["features"] = {
                "tempo_bpm": rng.choice([90.0, 120.0, 120.0, 128.5, 174.0]),
                "duration_s": rng.choice([30, 61.5, 240.25]),
                "key": rng.choice(["A", "A#", "C", "F#"]),
                "mode": rng.choice(["major", "minor"]),
            }
            title = rng.choice(TITLES)
            metadata = {} if title is None else {"title": title}
            if rng.random() < 0.5:
                metadata["artist"] = rng.choice(["Björk", "bjork", "ABBA", "abba"])
            doc["audio"] = {"metadata": metadata}
        documents.append(doc | {"track_id": track_id})
    return documents


def _value(document: Document, dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _alphabetical(text: str | None) -> str | None:
    """The text with its letters' accents taken off, lower-cased (None: no text)."""
    if text is None:
        return None
    bare = "".join(
        unicodedata.lookup(unicodedata.name(c).split(" WITH ")[0])
        if " WITH " in unicodedata.name(c, "")
        else c
        for c in text
    )
    return bare.lower().strip()


def _expected(documents: list[Document], sort: str) -> list[str]:
    order = parse_sort(sort)
    fields = order.column.fields
    if order.column.text and order.name != "key":
        fields = (TEXT_FIELDS[order.name],)
    present: list[tuple[list[Any], str]] = []
    missing: list[tuple[list[Any], str]] = []
    for doc in documents:
        values = [_value(doc, field) for field in fields]
        if fields[0] in TEXT_FIELDS.values():
            values = [_alphabetical(values[0])]
        blank = values[0] is None or (order.column.text and values[0] == "")
        (missing if blank else present).append((values, doc["track_id"]))
    present.sort(key=lambda item: (item[0], item[1]), reverse=order.descending)
    missing.sort(key=lambda item: item[1], reverse=order.descending)
    return [track_id for _, track_id in present + missing]


async def _pages(
    catalog: Catalog,
    tenant: str,
    sort: str,
    limit: int,
    filters: SearchFilters = NO_FILTERS,
    *,
    fields: tuple[str, ...] = (),
) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = await catalog.list_tracks(
            tenant,
            filters,
            words=[],
            status=None,
            cursor=cursor,
            limit=limit,
            sort=sort,
            fields=fields,
        )
        assert len(page) <= limit
        assert page or cursor is None
        found += [doc["track_id"] for doc in page]
        if cursor is None:
            return found


async def _insert(catalog: Catalog, tenant: str, documents: list[Document]) -> None:
    for doc in documents:
        fields = {k: v for k, v in doc.items() if k != "track_id"}
        assert await catalog.create_track(tenant, doc["track_id"], fields) is None


async def test_text_sorts_set_accents_and_case_aside(catalog: Catalog) -> None:
    titles = ["zed", "Émile", "B10", "apple", "Ärger", "  banana", "b2", "Zoë"]
    for number, title in enumerate(titles):
        fields = {"filename": f"{number}.wav", "sha256": f"{number:064x}", "created_at": 1.0}
        assert await catalog.create_track("alice", f"t{number}", fields) is None
        await catalog.upsert_track("alice", f"t{number}", {"audio": {"metadata": {"title": title}}})
    alphabetical = ["apple", "Ärger", "B10", "b2", "  banana", "Émile", "zed", "Zoë"]
    for sort, expected in (("title", alphabetical), ("-title", alphabetical[::-1])):
        page, _ = await catalog.list_tracks(
            "alice", NO_FILTERS, words=[], status=None, cursor=None, limit=3, sort=sort
        )
        listed = await _pages(catalog, "alice", sort, 3)
        assert [titles[int(track_id[1:])] for track_id in listed] == expected, sort
        assert [doc["audio"]["metadata"]["title"] for doc in page] == expected[:3], sort


async def test_an_index_of_an_older_sort_is_rebuilt_on_the_new_field(catalog: Catalog) -> None:
    await catalog.tracks.drop_index("tenant_sort_title")
    older = [("tenant", 1), ("audio.metadata.title", 1), ("track_id", 1)]
    await catalog.tracks.create_index(older, name="tenant_sort_title")
    await catalog.ensure_indexes()
    rebuilt = (await catalog.tracks.index_information())["tenant_sort_title"]["key"]
    assert [tuple(key) for key in rebuilt] == [
        ("tenant", 1),
        ("sort_text.title", 1),
        ("track_id", 1),
    ]


async def test_the_library_bounds_follow_writes_and_are_rebuilt_when_missing(
    catalog: Catalog,
) -> None:
    documents = _documents("alice", 12, seed=5)
    await _insert(catalog, "alice", documents)
    bpms = [doc["features"]["tempo_bpm"] for doc in documents if "features" in doc]
    names = [_alphabetical(doc["filename"]) for doc in documents]
    bounds = await catalog.bounds.find_one({"_id": "alice"})
    assert bounds is not None
    assert bounds["count"] == 12
    assert (bounds["low"]["bpm"], bounds["high"]["bpm"]) == (min(bpms), max(bpms))
    assert (bounds["low"]["filename"], bounds["high"]["filename"]) == (min(names), max(names))

    faster = {"features": {"tempo_bpm": 300.0}}
    await catalog.upsert_track("alice", documents[0]["track_id"], faster)
    assert await catalog.delete_track("alice", documents[1]["track_id"])
    bounds = await catalog.bounds.find_one({"_id": "alice"})
    assert bounds is not None
    assert (bounds["high"]["bpm"], bounds["count"]) == (300.0, 11)

    await catalog.bounds.delete_many({})  # a catalog from before the bounds
    await catalog.ensure_indexes()
    rebuilt = await catalog.bounds.find_one({"_id": "alice"})
    assert rebuilt is not None
    assert (rebuilt["high"]["bpm"], rebuilt["count"]) == (300.0, 11)
    documents[0]["features"] = {"tempo_bpm": 300.0}
    remaining = [doc for doc in documents if doc is not documents[1]]
    for sort in ("-bpm", "bpm"):  # first pages planned from the rebuilt bounds
        assert await _pages(catalog, "alice", sort, 5) == _expected(remaining, sort)


async def test_every_sort_pages_through_all_tracks_in_order(catalog: Catalog) -> None:
    documents = _documents("alice", 40, seed=7)
    await _insert(catalog, "alice", documents)
    await _insert(catalog, "bob", _documents("bob", 5, seed=8))  # never listed for alice
    for sort in get_args(SortName):
        for limit in (1, 7) if sort in {"bpm", "-title"} else (7,):
            listed = await _pages(catalog, "alice", sort, limit)
            assert listed == _expected(documents, sort), (sort, limit)


async def test_sorting_keeps_the_filters(catalog: Catalog) -> None:
    documents = _documents("alice", 30, seed=3)
    await _insert(catalog, "alice", documents)
    fast = SearchFilters(tempo_min=120)
    listed = await _pages(catalog, "alice", "-duration", 4, fast)
    kept = [doc for doc in documents if (_value(doc, "features.tempo_bpm") or 0) >= 120]
    assert listed == _expected(kept, "-duration")
    assert listed  # the seed gives some


async def test_listings_by_key_and_bpm_span_page_like_a_plain_sort(catalog: Catalog) -> None:
    """A listing filtered by key reads its slices of upload time and BPM through the index
    behind the tenant and the key, the other conditions checked after; a BPM filter narrows
    where BPM slices lie. Pages still hold exactly what a Python filter and sort give."""
    documents = _documents("alice", 60, seed=11)
    await _insert(catalog, "alice", documents)
    await _insert(catalog, "bob", _documents("bob", 12, seed=12))  # the same keys, never listed
    for filters in (
        SearchFilters(key="A", tempo_min=100, tempo_max=130),
        SearchFilters(key="C", mode="minor"),
        SearchFilters(tempo_min=121, tempo_max=175),
    ):
        kept = [
            doc
            for doc in documents
            if filters.key in (None, _value(doc, "features.key"))
            and filters.mode in (None, _value(doc, "features.mode"))
            and (filters.tempo_min or 0) <= (_value(doc, "features.tempo_bpm") or 0)
            and (_value(doc, "features.tempo_bpm") or 0) <= (filters.tempo_max or 1e9)
        ]
        assert kept, filters  # the seed gives some
        for sort in ("-created_at", "created_at", "bpm", "-bpm", "title"):
            for limit in (1, 4):
                listed = await _pages(catalog, "alice", sort, limit, filters)
                assert listed == _expected(kept, sort), (filters, sort, limit)


async def test_a_page_of_the_summary_fields_shows_what_whole_documents_show(
    catalog: Catalog,
) -> None:
    """The gateway's track list asks for SUMMARY_FIELDS alone (whole documents cost the
    embedded server three times as much to send); its summaries are those of whole documents,
    in every sort, and a page still pages."""
    documents = _documents("alice", 12, seed=5)
    for number, doc in enumerate(documents):
        doc |= {
            "size_bytes": 1000 + number,
            "status": "failed" if number % 3 == 0 else "indexed",
            "tags": {"mood": ["calm"], "genre": ["jazz", "soul"], "scores": {"msd": {"jazz": 0.9}}},
            "keywords": ["night", "jazz"],
            **({"failure_reason": "not audio"} if number % 3 == 0 else {}),
            **({"duplicates": [documents[0]["track_id"]]} if number == 5 else {}),
        }
    await _insert(catalog, "alice", documents)
    for sort in ("-created_at", "bpm", "title", "-key"):
        paged = await _pages(catalog, "alice", sort, 4, fields=SUMMARY_FIELDS)
        assert paged == _expected(documents, sort)
        shown, _ = await catalog.list_tracks(
            "alice",
            NO_FILTERS,
            words=[],
            status=None,
            cursor=None,
            limit=12,
            sort=sort,
            fields=SUMMARY_FIELDS,
        )
        full, _ = await catalog.list_tracks(
            "alice", NO_FILTERS, words=[], status=None, cursor=None, limit=12, sort=sort
        )
        assert [track_summary(doc) for doc in shown] == [track_summary(doc) for doc in full]
        assert "keywords" not in shown[0]
        assert "keywords" in full[0]
        assert any(summary.duplicates for summary in map(track_summary, shown))


async def test_a_cursor_serves_only_its_own_sort(catalog: Catalog) -> None:
    await _insert(catalog, "alice", _documents("alice", 6, seed=1))
    _, cursor = await catalog.list_tracks(
        "alice", NO_FILTERS, words=[], status=None, cursor=None, limit=2, sort="bpm"
    )
    assert cursor is not None
    with pytest.raises(InvalidCursorError, match="sort=bpm"):
        await catalog.list_tracks(
            "alice", NO_FILTERS, words=[], status=None, cursor=cursor, limit=2, sort="-bpm"
        )
    with pytest.raises(InvalidCursorError):
        await catalog.list_tracks(
            "alice", NO_FILTERS, words=[], status=None, cursor="bm9wZQ", limit=2, sort="bpm"
        )
    with pytest.raises(InvalidSortError, match="use one of"):
        parse_sort("loudness")


def test_every_column_sorts_both_ways() -> None:
    assert set(get_args(SortName)) == {p + name for name in COLUMNS for p in ("", "-")}
