"""How every benchmark section prints: markdown tables, and a progress line per phase.

One formatter so all sections read alike and a new section needs no printing code of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

Row = Sequence[str]


def markdown_table(header: Row, rows: Sequence[Row]) -> str:
    """A GitHub-flavoured markdown table; every row has as many cells as the header."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@contextlib.contextmanager
def phase(label: str) -> Iterator[None]:
    """Print `label…` now and its duration when the block ends, so long work shows progress."""
    print(f"{label}…", flush=True)
    began = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - began:.1f} s", flush=True)
