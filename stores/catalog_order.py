"""Orders of the track list (`GET /v1/tracks?sort=`) and the cursors that page through them.

Pure functions, tested alone; stores.catalog runs the queries they build.

A sort names a column (`bpm`) or its reverse (`-bpm`). Rows are ordered by the column's fields,
then by track id, which makes every position unique: the cursor of a page is the sort, the last
row's values and its track id, and the next page is "after that row" — correct however many
rows share a value, and unaffected by tracks added or deleted meanwhile. Tracks without a value
for the column (not analysed yet, no title tag) come after all the others in both directions,
ordered by track id: a page reads the tracks with values first, then, once those run out, the
rest (`segments`). Text columns compare by code point ("Zed" < "apple"): a collation would
sort them alphabetically, but the embedded catalog server (SecantusDB 0.7) applies collations to
sorts and not to range conditions, so collated cursors would skip and repeat rows.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal, get_args

import msgspec

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
    """A sortable column: its document fields, compared in turn; `text` when a blank string
    counts as no value; `always_present` when every uploaded track has it (one segment)."""

    fields: tuple[str, ...]
    text: bool = False
    always_present: bool = False


COLUMNS: dict[str, Column] = {
    "created_at": Column(fields=("created_at",), always_present=True),
    "bpm": Column(fields=("features.tempo_bpm",)),
    "duration": Column(fields=("features.duration_s",)),
    "key": Column(fields=("features.key", "features.mode")),
    "title": Column(fields=("audio.metadata.title",), text=True),
    "artist": Column(fields=("audio.metadata.artist",), text=True),
    "filename": Column(fields=("filename",), text=True),
}
SORT_NAMES: tuple[str, ...] = get_args(SortName)


class Segment(msgspec.Struct, kw_only=True, frozen=True):
    """One query of a page: its conditions (beside the list's own) and its sort."""

    conditions: list[Document]
    sort: list[tuple[str, int]]


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
    if last.values is not None and len(last.values) != len(order.column.fields):
        raise InvalidCursorError("invalid cursor; pass next_cursor from the previous page")
    return last


def _after(fields: tuple[str, ...], values: list[Any], track_id: str, op: str) -> Document:
    """Rows after (values…, track_id) in lexicographic order; the bound on the first field
    lets an index on (tenant, field…, track_id) seek."""
    branches: list[Document] = []
    for index, field in enumerate((*fields, "track_id")):
        branch = dict(zip(fields[:index], values[:index], strict=True))
        branch[field] = {op: track_id if field == "track_id" else values[index]}
        branches.append(branch)
    return {fields[0]: {f"{op}e": values[0]}, "$or": branches}


def segments(order: TrackOrder, cursor: str | None) -> list[Segment]:
    """The queries that read a page from `cursor` (None: the first page), in turn: the tracks
    with a value, in the column's order, then those without one, by track id."""
    last = decode_cursor(order, cursor) if cursor else None
    op = "$lt" if order.descending else "$gt"
    fields = order.column.fields
    spec = [(field, order.direction) for field in (*fields, "track_id")]
    found: list[Segment] = []
    if last is None or last.values is not None:
        conditions = [] if order.column.always_present else [order.present()]
        if last is not None and last.values is not None:
            conditions.append(_after(fields, last.values, last.track_id, op))
        found.append(Segment(conditions=conditions, sort=spec))
    if not order.column.always_present:
        conditions = [{"$nor": [order.present()]}]
        if last is not None and last.values is None:
            conditions.append({"track_id": {op: last.track_id}})
        by_id = [("track_id", order.direction)]
        found.append(Segment(conditions=conditions, sort=by_id))
    return found


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
