"""MongoDB queries over the catalog built from API filters: pure functions, tested alone.

The same search filters (schemas.api.SearchFilters) apply to listing, keyword search and — through
stores.vectors.build_filter — to vector search, so every search mode filters alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from handlers.tagging.vocabulary import concept_scores
from schemas.api import SearchFilters
from stores import text_search
from stores.catalog_order import SORT_TEXT, sort_texts

Document = dict[str, Any]

_RANGES = {
    "tempo_min": ("features.tempo_bpm", "$gte"),
    "tempo_max": ("features.tempo_bpm", "$lte"),
    "duration_min": ("features.duration_s", "$gte"),
    "duration_max": ("features.duration_s", "$lte"),
}
_EQUALS = {
    "key": "features.key",
    "mode": "features.mode",
    "mood": "tags.mood",  # an array field: matches when any element equals the value
    "genre": "tags.genre",
    "instruments": "tags.instruments",
    "vocals": "tags.vocals",
}
KEY_FIELD = "features.key"
KEYED_SLICES = ("created_at", "features.tempo_bpm")
"""Sort fields (newest first, by BPM) read in slices (stores.catalog_slices) through an index
behind the tenant and the musical key: equality, then the sort field (MongoDB's equality-sort-
range rule), so a listing filtered by key decodes only that key's tracks of each slice."""
_LOWER_OPS = frozenset({"$gt", "$gte"})
_RANGE_OPS = _LOWER_OPS | {"$lt", "$lte"}
_STRICT_OPS = frozenset({"$gt", "$lt"})  # on equal bounds, the tighter
UPLOADED: Document = {"created_at": {"$exists": True}}
"""Tracks the gateway recorded (the status projection alone never sets `created_at`)."""
MAX_KEYWORDS = 16
_WORD = re.compile(r"[^\W_]+#?")  # letters and digits (a key's sharp kept): "C#_minor" → c#, minor


def filter_conditions(filters: SearchFilters) -> list[Document]:
    conditions: list[Document] = []
    ranges: dict[str, Document] = {}
    for name, (field, op) in _RANGES.items():
        value = getattr(filters, name)
        if value is not None:
            ranges.setdefault(field, {})[op] = float(value)
    conditions.extend({field: bounds} for field, bounds in ranges.items())
    for name, field in _EQUALS.items():
        value = getattr(filters, name)
        if value is not None:
            conditions.append({field: value})
    return conditions


def _words(text: str) -> list[str]:
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def keywords(text: str) -> list[str]:
    """Lower-case words of a free-text query (at most MAX_KEYWORDS, no duplicates)."""
    return _words(text)[:MAX_KEYWORDS]


_FILE_TAG_WORDS = ("title", "artist", "album", "album_artist", "genre")
_LABEL_WORDS = ("mood", "genre", "instruments", "vocals")
SEARCH_VERSION = 3  # 2: metadata (`=word`) and concept (`~concept`) tokens; 3: `sort_text`
SEARCH_SOURCES: Document = {"filename": True, "tags": True, "audio.metadata": True}
"""The fields `search_fields` reads (a projection)."""


def keyword_tokens(document: Document, concepts: dict[str, float] | None = None) -> list[str]:
    """The words a track is found by — of its file name, its file's own tags (title, artist,
    album, genre), its labels (mood, genre, instruments, vocals) and description — then
    `=word` for the words a person named it by (file tags and file name: stores.text_search)
    and `~concept` for its strong tag concepts; stored as the document's `keywords` array, so
    keyword search is a multikey-index lookup rather than a pattern scan over every document."""
    tags: Document = document.get("tags") or {}
    file_tags: Document = (document.get("audio") or {}).get("metadata") or {}
    named = [str(file_tags.get(name) or "") for name in _FILE_TAG_WORDS]
    filename = str(document.get("filename", ""))
    parts = [filename, tags.get("description", ""), *named]
    for name in _LABEL_WORDS:
        parts += tags.get(name) or []
    metadata = _words(" ".join([filename.rsplit(".", 1)[0], *named]))
    return [
        *_words(" ".join(parts)),
        *(text_search.META_PREFIX + word for word in metadata),
        *text_search.concept_tokens(concepts or {}),
    ]


def search_fields(document: Document) -> Document:
    """What finding a track needs stored on it, from its file name, file tags and tags: text
    search's words and concepts (see stores.text_search) and the folded texts the track list
    sorts by (stores.catalog_order.sort_texts)."""
    concepts = concept_scores(document.get("tags") or {})
    return {
        "keywords": keyword_tokens(document, concepts),
        "concepts": text_search.stored_concepts(concepts),
        SORT_TEXT: sort_texts(document),
        "search_version": SEARCH_VERSION,
    }


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _merge(held: Any, value: Any) -> Any | None:
    """Two conditions on one field as one, or None when they do not merge. `$exists: true` goes
    when the other side equals or compares with a number: that already requires the field."""
    exists = {"$exists": True}
    if exists in (held, value) and any(_numeric(v) for v in (held, value)):
        return held if _numeric(held) else value
    both = (held, value)
    if not all(isinstance(v, dict) and v and all(k.startswith("$") for k in v) for v in both):
        return None
    if (ranges := _intersect(held, value)) is not None:
        return ranges
    if held.keys() & value.keys():
        return None
    merged = held | value
    if merged.get("$exists") is True and any(
        _numeric(v) for k, v in merged.items() if k != "$exists"
    ):
        del merged["$exists"]
    return merged


def _intersect(held: Document, value: Document) -> Document | None:
    """Two numeric ranges as the one both require (a BPM filter within a slice of BPM), or None
    when they are not both ranges of numbers."""
    sides: dict[bool, tuple[str, float]] = {}  # lower side? → its tightest (operator, bound)
    for op, bound in [*held.items(), *value.items()]:
        if op not in _RANGE_OPS or not _numeric(bound):
            return None
        lower = op in _LOWER_OPS
        sign = 1 if lower else -1  # a lower bound tightens upwards, an upper one downwards
        held_side = sides.get(lower)
        if held_side is None or (sign * bound, op in _STRICT_OPS) > (
            sign * held_side[1],
            held_side[0] in _STRICT_OPS,
        ):
            sides[lower] = (op, bound)
    return dict(sides.values())


def index_shaped(query: Document) -> Document:
    """`query` (a `$and` of conditions) as one flat document, fields in the conditions' order.

    Every MongoDB planner reads both alike, but the embedded server (SecantusDB) routes only a
    flat filter through an index — a top-level `$and`/`$or` makes it read and decode every
    document of the collection — and, of a flat filter, only equalities on an index's leading
    fields plus at most one range on the next; otherwise the first field with an index leading
    on it. Conditions that cannot merge stay in a `$and`.
    """
    flat: Document = {}
    rest: list[Document] = []
    for condition in query["$and"] if list(query) == ["$and"] else [query]:
        for field, value in condition.items():
            if field.startswith("$"):
                rest.append({field: value})
            elif field not in flat:
                flat[field] = value
            elif (merged := _merge(flat[field], value)) is not None:
                flat[field] = merged
            else:
                rest.append({field: value})
    return flat | ({"$and": rest} if rest else {})


def track_query(
    tenant: str,
    filters: SearchFilters,
    *,
    words: Sequence[str] = (),
    status: str | None = None,
    sha256: str | None = None,
) -> Document:
    """The tenant's uploaded tracks passing `filters` and mentioning all the words."""
    conditions: list[Document] = [{"tenant": tenant}, UPLOADED]
    conditions.extend(filter_conditions(filters))
    if words:
        conditions.append({"keywords": {"$all": list(words)}})
    if status is not None:
        conditions.append({"status": status})
    if sha256 is not None:
        conditions.append({"sha256": sha256})
    return {"$and": conditions}


def keyed_indexes() -> dict[str, list[tuple[str, int]]]:
    """Name → keys of the index behind each of KEYED_SLICES."""
    return {
        f"tenant_key_{field}": [("tenant", 1), (KEY_FIELD, 1), (field, 1)] for field in KEYED_SLICES
    }


def keyed_split(shaped: Document, field: str) -> tuple[Document, Document] | None:
    """An `index_shaped` filter as what an index of `keyed_indexes` reads — the tenant, one key
    and a range of the sliced `field`, exactly its fields (the embedded server plans nothing
    else onto it) — and the conditions left; None when it does not name all three."""
    bounds = shaped.get(field)
    if (
        field not in KEYED_SLICES
        or not isinstance(shaped.get("tenant"), str)
        or not isinstance(shaped.get(KEY_FIELD), str)
        or not isinstance(bounds, dict)
        or not bounds
        or not bounds.keys() <= _RANGE_OPS
    ):
        return None
    lead = {"tenant": shaped["tenant"], KEY_FIELD: shaped[KEY_FIELD], field: bounds}
    return lead, {name: value for name, value in shaped.items() if name not in lead}


def filter_span(query: Document, field: str) -> tuple[float | None, float | None]:
    """The lowest and highest value of a number `field` that `query` (a track_query) lets
    through (None: unbounded): where slices of that field need to look."""
    span: Document = {}
    for condition in query["$and"]:
        bounds = condition.get(field)
        if isinstance(bounds, dict):
            span = _intersect(span, bounds) or span
    low = next((bound for op, bound in span.items() if op in _LOWER_OPS), None)
    high = next((bound for op, bound in span.items() if op not in _LOWER_OPS), None)
    return low, high
