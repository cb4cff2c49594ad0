"""Where LLM answers are remembered, keyed by feature digest, so a replay costs no second request.

`TagCache` is the seam: the handler plugs in a NATS KV-backed store; `MemoryTagCache` is the
bounded in-process default (and what tests use).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class TagCache(Protocol):
    """Byte values under string keys; a missing key reads as None."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...


class MemoryTagCache:
    """A least-recently-used map holding at most `max_entries` answers."""

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
