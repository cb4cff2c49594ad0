"""A NATS KV bucket as the tagging cache, so every tagging worker shares LLM answers."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from streams.names import TAG_CACHE_BUCKET


class KVTagCache:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> KVTagCache:
        return cls(await js.key_value(TAG_CACHE_BUCKET))

    async def get(self, key: str) -> bytes | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        return entry.value

    async def put(self, key: str, value: bytes) -> None:
        await self.kv.put(key, value)
