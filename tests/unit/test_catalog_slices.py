"""Slices of a sort column (stores.catalog_slices): whatever the feedback, consecutive slices
hold every value with a value exactly once, in order, and nothing blank."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stores.catalog_order import COLUMNS
from stores.catalog_slices import Axis, SliceWalk


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
