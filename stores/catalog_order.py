"""Orders of the track list (`GET /v1/tracks?sort=`) and the cursors that page through them.

Pure functions, tested alone; stores.catalog runs the queries they build.

A sort names a column (`bpm`) or its reverse (`-bpm`). Rows are ordered by the column's fields,
then by track id, which makes every position unique: the cursor of a page is the sort, the last
row's values and its track id, and the next page is "after that row" — correct however many
rows share a value, and unaffected by tracks added or deleted meanwhile. Tracks without a value
for the column (not analysed yet, no title tag) come after all the others in both directions,
ordered by track id: a page reads the tracks with values first (the cursor row's ties, then
slices of the column: stores.catalog_slices), then, once those run out, the rest
(`without_value`). Text columns sort alphabetically, accents and case set aside ("apple",
"Émile", "Zed"): each track stores its texts folded that way (`sort_texts`, under `sort_text`)
and the column is that field. A collation would not do: the embedded catalog server (SecantusDB
0.7) applies collations to sorts and not to range conditions, so collated cursors would skip and
repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal, get_args

import msgspec

from stores.catalog_slices import Axis

Document = dict[str, Any]
SortName = Literal[
    "created_at", "-created_at", "bpm", "-bpm", "duration", "-duration", "key", "-key",
    "title", "-title", "artist", "-artist", "filename", "-filename",
]  # fmt: skip
DEFAULT_SORT: SortName = "-created_at"


class InvalidCursorError(ValueError):
    """A page cursor that this catalog did not hand out (or one of another sort)."""


class InvalidSortError(ValueError):
    """A sort the track list does not know."""


class Column(msgspec.Struct, kw_only=True, frozen=True):
    """A sortable column: its document fields, compared in turn; `always_present` when every
    uploaded track has it (one segment); `axis`: where its first field's values lie, for
    reading it in slices (stores.catalog_slices)."""

    fields: tuple[str, ...]
    axis: Axis
    always_present: bool = False

    @property
    def text(self) -> bool:
        """Text, where a blank string counts as no value."""
        return self.axis.text


SORT_TEXT = "sort_text"
TEXT_SOURCES = {
    "title": "audio.metadata.title",
    "artist": "audio.metadata.artist",
    "filename": "filename",
}
"""The text columns and the field each one's folded text comes from."""


def sort_text(text: str) -> str:
    """`text` as the text columns compare it: accents and case set aside, outer spaces dropped
    ("  Émile" → "emile")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def sort_texts(document: Document) -> Document:
    """The document's `sort_text` field: each text column's folded text, where it has one."""
    folded = {}
    for name, source in TEXT_SOURCES.items():
        value = _lookup(document, source)
        text = sort_text(value) if isinstance(value, str) else ""
        if text:
            folded[name] = text
    return folded


_TEXT = Axis(first=1 / 4096, text=True)
COLUMNS: dict[str, Column] = {
    "created_at": Column(
        fields=("created_at",), axis=Axis(first=1.0, high_now=True), always_present=True
    ),
    "bpm": Column(fields=("features.tempo_bpm",), axis=Axis(first=1.0, high=400.0)),
    "duration": Column(fields=("features.duration_s",), axis=Axis(first=1.0, high=1e5)),
    # key names are "A" to "G#": their line starts at "A"
    "key": Column(
        fields=("features.key", "features.mode"),
        axis=Axis(first=1 / 1024, low=0.5, high=0.57, text=True),
    ),
    **{name: Column(fields=(f"{SORT_TEXT}.{name}",), axis=_TEXT) for name in TEXT_SOURCES},
}
SORT_NAMES: tuple[str, ...] = get_args(SortName)


class TrackOrder(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    column: Column
    descending: bool

    @property
    def direction(self) -> int:
        return -1 if self.descending else 1

    def present(self) -> Document:
        """The tracks that have a value for the column (a text one: a non-empty string)."""
        first = self.column.fields[0]
        return {first: {"$gt": ""}} if self.column.text else {first: {"$ne": None}}

    def lead(self, document: Document) -> Any:
        """The document's value of the column's first field (None without one)."""
        return _lookup(document, self.column.fields[0])

    def values(self, document: Document) -> list[Any] | None:
        """The document's values for the column's fields; None when it has none."""
        found = [_lookup(document, field) for field in self.column.fields]
        first = found[0]
        if first is None or (self.column.text and not (isinstance(first, str) and first)):
            return None
        return found


def _lookup(document: Document, dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def sort_values(document: Document) -> dict[str, Any]:
    """Each column's leading value in the document, where it has one."""
    found = {}
    for name, column in COLUMNS.items():
        values = TrackOrder(name=name, column=column, descending=False).values(document)
        if values is not None:
            found[name] = values[0]
    return found


def bounds_update(documents: list[Document], added: int = 0) -> Document | None:
    """The update of a library's bounds — lowest and highest value per column (`low.<column>`,
    `high.<column>`) and its number of tracks — for written documents (`added` of them new);
    None: no change."""
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    for document in documents:
        for name, value in sort_values(document).items():
            low[name] = min(low.get(name, value), value)
            high[name] = max(high.get(name, value), value)
    update: Document = {}
    if low:
        update["$min"] = {f"low.{name}": value for name, value in low.items()}
        update["$max"] = {f"high.{name}": value for name, value in high.items()}
    if added:
        update["$inc"] = {"count": added}
    return update or None


def first_bounds(order: TrackOrder, bounds: Document | None) -> tuple[Any, Any, int] | None:
    """The library's (lowest, highest, count) for the order's column, when they are known."""
    if not bounds:
        return None
    low = (bounds.get("low") or {}).get(order.name)
    high = (bounds.get("high") or {}).get(order.name)
    count = bounds.get("count", 0)
    if low is None or high is None or not isinstance(count, int) or count <= 0:
        return None
    return low, high, count


def parse_sort(sort: str) -> TrackOrder:
    """`bpm` ascending, `-bpm` descending; InvalidSortError names the sorts there are."""
    column = COLUMNS.get(sort.removeprefix("-"))
    if column is None:
        choices = ", ".join(SORT_NAMES)
        raise InvalidSortError(f"unknown sort {sort!r}; use one of: {choices}")
    return TrackOrder(name=sort.removeprefix("-"), column=column, descending=sort.startswith("-"))


class Cursor(msgspec.Struct, array_like=True, frozen=True):
    sort: str
    values: list[float | str | None] | None  # None: in the segment of tracks without a value
    track_id: str


def encode_cursor(order: TrackOrder, document: Document) -> str:
    """The cursor of the page that follows `document` in `order`."""
    sort = f"-{order.name}" if order.descending else order.name
    raw = msgspec.json.encode(Cursor(sort, order.values(document), document["track_id"]))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(order: TrackOrder, cursor: str) -> Cursor:
    """The last row of the page `cursor` ended; InvalidCursorError when it is not one of
    this catalog's cursors for `order`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last = msgspec.json.decode(raw, type=Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidCursorError("invalid cursor; pass next_cursor from the previous page") from exc
    sort = f"-{order.name}" if order.descending else order.name
    if last.sort != sort:
        raise InvalidCursorError(f"this cursor pages sort={last.sort}, not sort={sort}")
    if last.values is not None and not _fits(order.column, last.values):
        raise InvalidCursorError("invalid cursor; pass next_cursor from the previous page")
    return last


def _fits(column: Column, values: list[float | str | None]) -> bool:
    """The cursor's values have the column's shape: one per field, text or a number."""
    kind: type | tuple[type, ...] = str if column.axis.text else (int, float)
    return len(values) == len(column.fields) and isinstance(values[0], kind)


def _after(fields: tuple[str, ...], values: list[Any], track_id: str, op: str) -> Document:
    """Rows after (values…, track_id) in lexicographic order; the bound on the first field
    lets an index on (tenant, field…, track_id) seek."""
    branches: list[Document] = []
    for index, field in enumerate((*fields, "track_id")):
        branch = dict(zip(fields[:index], values[:index], strict=True))
        branch[field] = {op: track_id if field == "track_id" else values[index]}
        branches.append(branch)
    return {fields[0]: {f"{op}e": values[0]}, "$or": branches}


def ties_after(order: TrackOrder, last: Cursor) -> Document:
    """The tracks sharing the cursor row's first value and coming after it in the order."""
    assert last.values is not None
    op = "$lt" if order.descending else "$gt"
    fields, values = order.column.fields, last.values
    if len(fields) == 1:
        return {fields[0]: values[0], "track_id": {op: last.track_id}}
    return {fields[0]: values[0]} | _after(fields[1:], values[1:], last.track_id, op)


def without_value(order: TrackOrder, last: Cursor | None) -> Document:
    """The tracks without a value for the column (after `last` when it is one of them)."""
    found: Document = {"$nor": [order.present()]}
    if last is not None and last.values is None:
        found["track_id"] = {"$lt" if order.descending else "$gt": last.track_id}
    return found


def page_projection(order: TrackOrder, fields: Sequence[str]) -> Document:
    """The projection of a page showing `fields` (all of them when empty), with what its order
    and cursor read: the column's fields and the track id. A path under another is left out
    (the server refuses the pair)."""
    if not fields:
        return {"_id": False}
    wanted = {*fields, *order.column.fields, "track_id"}
    kept = sorted(path for path in wanted if not any(path.startswith(f"{w}.") for w in wanted))
    return {"_id": False} | dict.fromkeys(kept, True)


def sort_spec(order: TrackOrder) -> list[tuple[str, int]]:
    return [(field, order.direction) for field in (*order.column.fields, "track_id")]


def sort_indexes() -> dict[str, list[tuple[str, int]]]:
    """Name → keys of the catalog index serving each sort but created_at's (the catalog's
    `tenant_created` index serves that one)."""
    return {
        f"tenant_sort_{name}": [
            ("tenant", 1),
            *((field, 1) for field in column.fields),
            ("track_id", 1),
        ]
        for name, column in COLUMNS.items()
        if not column.always_present
    }


def slice_indexes() -> dict[str, list[tuple[str, int]]]:
    """Name → key of the single-field index on each column's first field but created_at's
    (the catalog's `created` index): a slice with conditions beside the tenant reads it."""
    return {
        f"slice_{name}": [(column.fields[0], 1)]
        for name, column in COLUMNS.items()
        if not column.always_present
    }
