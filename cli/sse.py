"""Server-sent events from a stream of lines: the gateway's progress streams, parsed to spec.

Only what Tonestream's streams use: `event:` and (multi-line) `data:` fields, dispatched on a
blank line, with `:` comment lines (the gateway's keep-alives) and other fields ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import msgspec


class ServerEvent(msgspec.Struct, kw_only=True, frozen=True):
    event: str
    data: str


async def events(lines: AsyncIterable[str]) -> AsyncIterator[ServerEvent]:
    """Each complete event in `lines` (lines without their line endings)."""
    name, data = "", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield ServerEvent(event=name or "message", data="\n".join(data))
            name, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
