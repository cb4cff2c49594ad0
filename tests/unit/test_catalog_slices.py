"""Slices of a sort column (stores.catalog_slices): whatever the feedback, consecutive slices
hold every value with a value exactly once, in order, and nothing blank."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stores.catalog_order import COLUMNS
from stores.catalog_slices import Axis, SliceWalk, first_end, narrowed


def _holds(bounds: dict[str, Any], value: Any) -> bool:
    checks = {
        "$gt": lambda bound: value > bound,
        "$lt": lambda bound: value < bound,
        "$lte": lambda bound: value <= bound,
    }
    return all(checks[op](bound) for op, bound in bounds.items())


def _walk(
    axis: Axis,
    values: list[Any],
    descending: bool,
    after: Any | None,
    seed: int,
    *,
    until: Any | None = None,
) -> list:
    rng = random.Random(seed)
    walk = SliceWalk("f", axis, descending=descending, after=after, until=until)
    read: list[Any] = []
    for _ in range(10_000):
        bounds = walk.condition()["f"]
        held = sorted((v for v in values if _holds(bounds, v)), reverse=descending)
        read += held
        if walk.last:
            return read
        spread = (read[0], read[-1]) if read else None
        walk.advance(len(read), rng.choice([0, 1, 5, 50]), spread)  # any feedback at all
    raise AssertionError("the walk never reached the end of the column")


NUMBERS = [0.0, 0.5, 1.0, 60.0, 119.9, 120.0, 120.0, 174.0, 399.9, 400.0, 1e6]
TEXTS = ["", " x", "0", "A", "A#", "Ab", "B", "Zed", "apple", "zz", "~", "Ärger", "Émile", "日本"]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", ["bpm", "created_at", "title", "key"])
def test_slices_read_every_value_once_in_order(column: str, descending: bool) -> None:
    axis = COLUMNS[column].axis
    values = TEXTS if axis.text else [*NUMBERS, 1.7e9, 4e9] if column == "created_at" else NUMBERS
    present = [v for v in values if v != ""]
    for seed in range(5):
        assert _walk(axis, values, descending, None, seed) == sorted(present, reverse=descending)
        after = present[seed % len(present)]
        beyond = [v for v in present if (v < after if descending else v > after)]
        expected = sorted(beyond, reverse=descending)
        assert _walk(axis, values, descending, after, seed) == expected, after


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", ["bpm", "created_at", "title", "key"])
def test_a_remembered_first_slice_holds_that_page_and_the_walk_still_reads_everything(
    column: str, descending: bool
) -> None:
    axis = COLUMNS[column].axis
    values = TEXTS if axis.text else [*NUMBERS, 1.7e9, 4e9] if column == "created_at" else NUMBERS
    ordered = sorted((v for v in values if v != ""), reverse=descending)
    for end in range(len(ordered)):
        until = SliceWalk("f", axis, descending=descending, after=None).reach(ordered[end])
        walk = SliceWalk("f", axis, descending=descending, after=None, until=until)
        first = [v for v in ordered if _holds(walk.condition()["f"], v)]
        assert first[: end + 1] == ordered[: end + 1], ordered[end]  # the page, in one read
        for seed in range(3):
            assert _walk(axis, values, descending, None, seed, until=until) == ordered, until


def test_text_lies_on_the_line_in_order() -> None:
    axis = COLUMNS["title"].axis
    ordered = sorted(TEXTS)
    positions = [axis.position(text) for text in ordered]
    assert positions == sorted(positions)
    for text in ordered:
        assert axis.value(axis.position(text)) <= text  # the least string at its place


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", ["bpm", "created_at", "title"])
def test_a_first_slice_from_the_bounds_holds_about_a_page(column: str, descending: bool) -> None:
    """Spread evenly, the values of the first slice planned from the library's lowest and highest
    value and its size number between one and two pages; the walk still reads them all."""
    rng = random.Random(3)
    axis = COLUMNS[column].axis
    if axis.text:
        values = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=5)) for _ in range(2000)]
    else:
        start = 1.7e9 if column == "created_at" else 70.0
        values = [start + rng.uniform(0, 110) for _ in range(2000)]
    ordered = sorted(values, reverse=descending)
    until = first_end(axis, (min(values), max(values), len(values)), 50, descending=descending)
    walk = SliceWalk("f", axis, descending=descending, after=None, until=until)
    first = [v for v in ordered if _holds(walk.condition()["f"], v)]
    assert first == ordered[: len(first)]
    assert 50 <= len(first) <= 150, len(first)
    assert _walk(axis, values, descending, None, 0, until=until) == ordered


def test_a_first_slice_from_the_bounds_of_a_small_library_holds_all_of_it() -> None:
    axis = COLUMNS["bpm"].axis
    for descending in (False, True):
        until = first_end(axis, (90.0, 120.0, 3), 50, descending=descending)
        walk = SliceWalk("f", axis, descending=descending, after=None, until=until)
        assert all(_holds(walk.condition()["f"], v) for v in (90.0, 100.0, 120.0))


def test_an_axis_within_shared_starts_still_reads_every_value_once_in_order() -> None:
    """Placed after the bounds' common start ("track "), text outside them (bounds gone stale)
    is still read, once, in order."""
    axis = COLUMNS["filename"].axis.within("track 000100.flac", "track 999000.flac")
    assert axis.prefix == "track "
    inside = [f"track {number:06d}.flac" for number in range(100, 999_000, 7919)]
    values = [*inside, "", "a", "track", "tracj z", "track ", "trackz", "zz", "日本"]
    present = [v for v in values if v != ""]
    for descending in (False, True):
        for seed in range(5):
            read = _walk(axis, values, descending, None, seed)
            assert read == sorted(present, reverse=descending)


def test_a_first_slice_of_text_with_a_shared_start_holds_a_page_and_little_more() -> None:
    """Digits fill 10 of a character's 128 places, so a first slice planned at the mean density
    holds several pages: still a small part of the library, not most of it."""
    rng = random.Random(4)
    values = [f"track {rng.randrange(10**6):06d}.flac" for _ in range(5000)]
    bounds = (min(values), max(values), len(values))
    for descending in (False, True):
        axis = COLUMNS["filename"].axis.within(bounds[0], bounds[1])
        until = first_end(axis, bounds, 50, descending=descending)
        walk = SliceWalk("f", axis, descending=descending, after=None, until=until)
        first = [v for v in values if _holds(walk.condition()["f"], v)]
        assert 50 <= len(first) <= len(values) // 8, (descending, len(first))


@pytest.mark.parametrize("descending", [False, True])
def test_an_axis_spanning_a_filter_still_reads_every_value_once_in_order(descending: bool) -> None:
    """Narrowed to a BPM filter's span, or to the library's bounds, the walk starts there (the
    first and last slices stay open), so values outside it are still read exactly once."""
    axis = COLUMNS["bpm"].axis.spanning(100.0, 130.0)
    assert (axis.low, axis.high) == (100.0, 130.0)
    assert COLUMNS["bpm"].axis.spanning(None, None) == COLUMNS["bpm"].axis
    for seed in range(5):
        read = _walk(axis, NUMBERS, descending, None, seed)
        assert read == sorted(NUMBERS, reverse=descending)
    uploads = [1.6e9, 1.7e9, 1.7e9 + 1, 1.7e9 + 30, 1.8e9, 4e9]
    known = COLUMNS["created_at"].axis.within(1.7e9, 1.7e9 + 30)  # stale: uploads came later
    assert (known.low, known.high, known.high_now) == (1.7e9, 1.7e9 + 30, False)
    for seed in range(5):
        assert _walk(known, uploads, descending, None, seed) == sorted(uploads, reverse=descending)


def test_bounds_narrowed_to_a_filter_keep_the_librarys_density() -> None:
    assert narrowed((60.0, 180.0, 1200), 100.0, 130.0) == (100.0, 130.0, 300)
    assert narrowed((60.0, 180.0, 1200), None, 90.0) == (60.0, 90.0, 300)
    assert narrowed((60.0, 180.0, 1200), 200.0, None) is None  # nothing there
    assert narrowed((120.0, 120.0, 7), 100.0, 130.0) == (120.0, 120.0, 7)
