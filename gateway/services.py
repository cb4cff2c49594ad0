"""Everything a request handler talks to, opened once per gateway and injected into handlers.

`tonestream gateway` opens its own connections from settings; `tonestream up` hands over the
ones its worker already owns (each Qdrant Edge shard has a single owner).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from schemas.settings import Settings
from stores.accounts import Accounts
from stores.blobs import BlobStore, open_blob_store
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.publish import EventPublisher
from streams.topology import ensure_topology


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    nc: Client
    js: JetStreamContext
    publisher: EventPublisher
    catalog: Catalog
    accounts: Accounts
    vectors: VectorIndex
    blobs: BlobStore
    searches: asyncio.Semaphore  # admits `search_concurrency` searches at once

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        nats_url: str,
        mongo_url: str,
        *,
        catalog: Catalog | None = None,
        vectors: VectorIndex | None = None,
    ) -> AsyncIterator[Services]:
        """Connect to NATS and the stores; `catalog`/`vectors` given are shared, not closed."""
        async with contextlib.AsyncExitStack() as stack:
            nc = await nats.connect(nats_url, name="tonestream-gateway", max_reconnect_attempts=-1)
            stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_topology(js, settings)
            if catalog is None:
                catalog = await Catalog.open(mongo_url, settings.mongo_db)
                stack.push_async_callback(catalog.close)
                await catalog.ensure_indexes()
            if vectors is None:
                vectors = await VectorIndex.open(settings)
                stack.push_async_callback(vectors.close)
            accounts = Accounts(catalog.db, settings)
            await accounts.ensure_indexes()
            yield cls(
                settings=settings,
                nc=nc,
                js=js,
                publisher=EventPublisher(js),
                catalog=catalog,
                accounts=accounts,
                vectors=vectors,
                blobs=open_blob_store(settings),
                searches=asyncio.Semaphore(settings.search_concurrency),
            )
