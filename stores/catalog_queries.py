"""MongoDB queries over the catalog built from API filters: pure functions, tested alone.

The same search filters (schemas.api.SearchFilters) apply to listing, keyword search and — through
stores.vectors.build_filter — to vector search, so every search mode filters alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from schemas.api import SearchFilters

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
}
UPLOADED: Document = {"created_at": {"$exists": True}}
"""Tracks the gateway recorded (the status projection alone never sets `created_at`)."""
MAX_KEYWORDS = 16
_WORD = re.compile(r"[^\W_]+#?")  # letters and digits (a key's sharp kept): "C#_minor" → c#, minor


class InvalidCursorError(ValueError):
    """A page cursor that this catalog did not hand out."""


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


def keyword_tokens(document: Document) -> list[str]:
    """The words a track is found by — of its file name, its file's own tags (title, artist,
    album, genre), its labels (mood, genre, instruments, vocals) and description — stored as the
    document's `keywords` array, so keyword search is a multikey-index lookup rather than a
    pattern scan over every document."""
    tags: Document = document.get("tags") or {}
    file_tags: Document = (document.get("audio") or {}).get("metadata") or {}
    parts = [document.get("filename", ""), tags.get("description", "")]
    parts += [str(file_tags.get(name) or "") for name in _FILE_TAG_WORDS]
    for name in _LABEL_WORDS:
        parts += tags.get(name) or []
    return _words(" ".join(parts))


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
    if held.keys() & value.keys():
        return None
    merged = held | value
    if merged.get("$exists") is True and any(
        _numeric(v) for k, v in merged.items() if k != "$exists"
    ):
        del merged["$exists"]
    return merged


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
    any_word: bool = False,
    status: str | None = None,
    sha256: str | None = None,
) -> Document:
    """The tenant's uploaded tracks passing `filters` and mentioning the words (all, or any)."""
    conditions: list[Document] = [{"tenant": tenant}, UPLOADED]
    conditions.extend(filter_conditions(filters))
    if words:
        conditions.append({"keywords": {"$in" if any_word else "$all": list(words)}})
    if status is not None:
        conditions.append({"status": status})
    if sha256 is not None:
        conditions.append({"sha256": sha256})
    return {"$and": conditions}


FIRST_SLICE_S = 1.0
MAX_WIDEN = 64.0


def next_slice(read_s: float, found: int, missing: int) -> float:
    """Seconds of `created_at` to read next, newest first, after `read_s` seconds held `found`
    tracks and `missing` more are wanted: enough at the density seen so far, with a margin, and
    between the span already read and MAX_WIDEN times it; 4 times when nothing turned up (a
    slice that overshoots into a dense past decodes all of it)."""
    guess = 1.5 * missing * read_s / found if found else 4 * read_s
    return min(max(guess, read_s), MAX_WIDEN * read_s)


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    created_at: float
    track_id: str


def encode_cursor(created_at: float, track_id: str) -> str:
    raw = msgspec.json.encode(_Cursor(created_at, track_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, track_id) of the last track of the page `cursor` ended."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidCursorError("invalid cursor; pass next_cursor from the previous page") from exc
    return last.created_at, last.track_id
