"""Sorted pages read in slices of the sort column: pure planning, run by stores.catalog.

The embedded catalog server (SecantusDB) has no limit push-down: a sorted query decodes every
document its index range yields, so "the first 51 of 100k by BPM" would decode 100k. A page is
therefore read as consecutive slices of the sort column's leading field — an index range each —
starting at the cursor (or the column's start), each slice sized from the density of tracks
seen so far, until the page is full. The last slice is unbounded, so the result is exact
whatever the data; the slicing only decides how much is read. On MongoDB each slice is one
bounded index scan.

Slices are planned on a line (`Axis`): a number is its own position; text is placed by its
first characters, so that a text slice is a range of strings. Every slice is a half-open range,
lower bound excluded (SecantusDB 0.7.0b3 loses documents equal to an inclusive `$gte` bound on
a descending index), and consecutive slices share their bound, so none overlaps or leaves a gap.
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec

Document = dict[str, Any]

MAX_WIDEN = 64.0
INF = float("inf")
_TEXT_BASE = 128  # the characters of ASCII; all others share its last place
_TEXT_DIGITS = 7  # 49 bits: as many as a float holds exactly


def _common_start(one: str, other: str) -> str:
    differs = (at for at, (a, b) in enumerate(zip(one, other, strict=False)) if a != b)
    return one[: next(differs, min(len(one), len(other)))]


class Axis(msgspec.Struct, frozen=True):
    """Where a column's values lie: `first` is the first slice's width, `low`/`high` bound the
    values slices are planned over (the first and last slice reach past them); `high_now`:
    the high end is the present (upload times); `text`: strings, placed by their characters
    after `prefix`, which every value planned over starts with (`within`)."""

    first: float
    low: float = 0.0
    high: float = 1.0
    high_now: bool = False
    text: bool = False
    prefix: str = ""

    def within(self, low: Any, high: Any) -> Axis:
        """This axis for values from `low` to `high`: numbers span them (`spanning`: a library
        whose newest upload is a day old does not plan its slices from now), text is placed
        after their common start ("track 000001.flac" to "track 999999.flac" by the characters
        after "track ")."""
        if not self.text:
            return self.spanning(low, high)
        return msgspec.structs.replace(self, prefix=_common_start(str(low), str(high)))

    def spanning(self, low: float | None, high: float | None) -> Axis:
        """This number axis narrowed to a span (None: that side stays): slices start where
        values begin, and their widths count from there. The first and last slices stay open,
        so a value outside the span is still read, once, in order."""
        if self.text:
            return self
        return msgspec.structs.replace(
            self,
            low=self.low if low is None else max(self.low, low),
            high=self.high if high is None else min(self.top(), high),
            high_now=self.high_now and high is None,
        )

    def top(self) -> float:
        return time.time() if self.high_now else self.high

    def position(self, value: Any) -> float:
        if not self.text:
            return float(value)
        text = str(value)
        if not text.startswith(self.prefix):  # outside the values planned over: an end
            return 0.0 if text < self.prefix else 1.0
        position, scale = 0.0, 1.0
        for character in text[len(self.prefix) :][:_TEXT_DIGITS]:
            scale /= _TEXT_BASE
            position += min(ord(character), _TEXT_BASE - 1) * scale
            if ord(character) >= _TEXT_BASE - 1:
                break  # past ASCII every string shares one place (kept in order, not sliced)
        return position

    def value(self, position: float) -> Any:
        """The field value at `position` (for text, the least string placed there)."""
        if not self.text:
            return position
        digits = []
        for _ in range(_TEXT_DIGITS):
            position *= _TEXT_BASE
            digit = min(int(position), _TEXT_BASE - 1)
            digits.append(digit)
            position -= digit
        while digits and digits[-1] == 0:
            digits.pop()
        return self.prefix + "".join(map(chr, digits))


def next_width(
    read: float, found: int, missing: int, spread: float, least: float, *, last: float | None
) -> float:
    """The width of the next slice, after `read` (from the start) held `found` tracks lying
    over `spread`, and `missing` more are wanted: enough at their density, with a margin (at
    least `least`, at most MAX_WIDEN times `read`). Across a gap it grows: as wide again as
    `read` while nothing turned up, twice the `last` slice's width after an empty one (a slice
    that overshoots into a dense region decodes all of it)."""
    if not found:
        return read
    if last is not None:
        return min(2 * last, MAX_WIDEN * read)
    guess = 1.5 * missing * max(spread, least) / found
    return min(max(guess, least), MAX_WIDEN * read)


def holding(value: Any, axis: Axis, *, descending: bool) -> Any:
    """The far bound of a first slice that holds `value`: the value itself ascending (an
    inclusive bound); descending, one just below it (the lower bound is exclusive): the next
    float, or the text without its last character."""
    if not descending:
        return value
    return value[:-1] if axis.text else math.nextafter(value, -INF)


def narrowed(
    bounds: tuple[Any, Any, int], low: float | None, high: float | None
) -> tuple[Any, Any, int] | None:
    """A library's (lowest, highest, count) of a number column within a filter's span, the
    count at the library's mean density; None when the span holds none of its values."""
    first, last, count = bounds
    inner_low = first if low is None else max(first, low)
    inner_high = last if high is None else min(last, high)
    if inner_low > inner_high:
        return None
    share = (inner_high - inner_low) / (last - first) if last > first else 1.0
    return inner_low, inner_high, max(1, round(count * share))


def first_end(axis: Axis, bounds: tuple[Any, Any, int], wanted: int, *, descending: bool) -> Any:
    """Where a first page's first slice may end, knowing the library's lowest and highest value
    of the column and how many tracks it has (`bounds`): wide enough for `wanted` tracks at
    their mean density, with a margin, from the end the walk starts at (the whole column when
    that reaches past the other end)."""
    low, high, count = bounds
    start, stop = axis.position(low), axis.position(high)
    width = 1.5 * wanted * (stop - start) / max(count, 1)
    if descending:
        return (
            axis.value(stop - width)
            if stop - width > start
            else holding(low, axis, descending=True)
        )
    return axis.value(start + width) if start + width < stop else high


class SliceWalk:
    """The slices of one page's tracks with a value, in order: `condition()` is the current
    slice's condition on the field, `advance(found, missing)` moves to the next (`found`: the
    tracks read so far); `last` once the slice reaches the end of the column.

    Ascending from cursor value v: (v, b1], (b1, b2], …, (bk, ∞); descending: (b1, v),
    (b2, b1], …, (-∞, bk]. Without a cursor the first slice is open at the start. The cursor
    row's ties (the same value, later track ids) are read apart, before the slices.
    """

    def __init__(
        self,
        field: str,
        axis: Axis,
        *,
        descending: bool,
        after: Any | None,
        until: Any | None = None,
    ) -> None:
        """`until`: where the first slice ends, when known (`reach` of where this page ended
        last time, or `first_end` of the library's bounds)."""
        self.field, self.axis, self.descending = field, axis, descending
        if after is not None:
            self._origin = axis.position(after)
        else:
            self._origin = axis.top() if descending else axis.low
        self._near: Any | None = after  # where this slice starts (None: open)
        self._first = True
        known = abs(axis.position(until) - self._origin) if until is not None else 0.0
        self._width = max(known, axis.first)  # from the origin to this slice's far end
        self._step = self._width  # this slice's own width
        self._found = 0  # tracks read before this slice
        self._far = until if until is not None else self._far_end()

    @property
    def last(self) -> bool:
        return self._far is None

    def _far_end(self) -> Any | None:
        """This slice's far bound, or None once it reaches past the column's end."""
        if self.descending:
            position = self._origin - self._width
            return None if position <= self.axis.low else self.axis.value(position)
        position = self._origin + self._width
        return None if position >= self.axis.top() else self.axis.value(position)

    def condition(self) -> Document:
        lower, upper = (self._far, self._near) if self.descending else (self._near, self._far)
        # a value at all: text that is not blank, any number (None and blanks: the other segment)
        bounds: Document = {"$gt": lower if lower is not None else "" if self.axis.text else -INF}
        if upper is not None:
            # descending, the first slice ends at the cursor row's value, read apart
            bounds["$lt" if self.descending and self._first else "$lte"] = upper
        return {self.field: bounds}

    def reach(self, value: Any) -> Any:
        """The far bound of a first slice that holds `value` (a later walk's `until`)."""
        return holding(value, self.axis, descending=self.descending)

    def advance(self, found: int, missing: int, spread: tuple[Any, Any] | None) -> None:
        """On to the next slice: `found` tracks read so far, from `spread[0]` to `spread[1]`."""
        distance = 0.0
        if spread is not None:
            distance = abs(self.axis.position(spread[1]) - self.axis.position(spread[0]))
        empty = self._step if found == self._found else None  # this slice held nothing
        self._step = next_width(self._width, found, missing, distance, self.axis.first, last=empty)
        self._near, self._first, self._found = self._far, False, found
        self._width += self._step
        self._far = self._far_end()
        while self._far is not None and not self._beyond(self._far):
            # a remembered bound lies past where its position says (text beyond ASCII, or
            # cut at 7 characters): the next bound must still follow it
            self._step *= 2
            self._width += self._step
            self._far = self._far_end()

    def _beyond(self, bound: Any) -> bool:
        """`bound` lies after this slice's start in the walk's direction."""
        return bool(bound < self._near if self.descending else bound > self._near)
