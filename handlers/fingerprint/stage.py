"""Fingerprint stage: indexed → fingerprinted. Landmark hashes of the analysis audio go into the
fingerprint index, then the track is checked against the tenant's other tracks for duplicates.

It follows indexing (FOLLOW_UP_STAGES): the catalog document is complete by then, so the
`duplicates` written here are never overwritten by the indexing stage, and the track's status
stays `indexed` whatever happens here. Hashing runs in the DSP pool; the index calls go to the
process that owns the index (stores.fingerprints_edge). Idempotent: a track's windows are
replaced, and the duplicate lists on both sides are rewritten (Catalog.set_duplicates), so a
replay rebuilds the same index and groups. Deletes: the tombstone is checked before and after
the writes; a delete that raced them is finished here (the fingerprints removed), as indexing
does for its own writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from handlers.errors import PermanentError
from handlers.jobs import fingerprint_file
from handlers.pool import WorkerPool
from schemas.events import Fingerprinted, Indexed
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore
from stores.catalog import Catalog
from stores.fingerprint_store import FingerprintStore
from streams.names import Stage, analysis_blob_key

T = TypeVar("T")
DELETED_REASON = "the track was deleted; it is not fingerprinted again"


class FingerprintStage:
    stage = Stage.FINGERPRINT
    input_type = Indexed

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        fingerprints: FingerprintStore,
        blobs: BlobStore,
        pool: WorkerPool,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.fingerprints = fingerprints
        self.blobs = blobs
        self.pool = pool
        # add → look up → record, one track at a time: two copies finishing together must each
        # see the other's windows, or the later `set_duplicates` would undo the earlier link.
        # (Hashing, the slow part, stays concurrent; an Edge index has this one owner process.)
        self._grouping = asyncio.Lock()

    @property
    def version(self) -> int:
        return self.settings.fingerprint_version

    async def _within(self, call: Awaitable[T]) -> T:
        return await asyncio.wait_for(call, self.settings.store_timeout_s)

    async def _deleted(self, tenant: str, track_id: str) -> bool:
        if not await self._within(self.catalog.is_deleted(tenant, track_id)):
            return False
        await self._within(self.fingerprints.remove(tenant, track_id))
        await self._within(self.catalog.forget_duplicate(tenant, track_id))
        return True

    async def handle(self, event: Indexed) -> Fingerprinted:
        tenant, track_id = event.track.tenant, event.track.track_id
        if await self._deleted(tenant, track_id):
            raise PermanentError(DELETED_REASON)
        try:
            async with self.blobs.local_copy(analysis_blob_key(tenant, track_id)) as path:
                hashes, times = await self.pool.run(
                    fingerprint_file, str(path), timeout_s=self.settings.decode_timeout_s
                )
        except BlobNotFound:
            if await self._deleted(tenant, track_id):
                raise PermanentError(DELETED_REASON) from None
            raise PermanentError("the analysis audio is missing from the blob store") from None
        async with self._grouping:
            windows = await self._within(self.fingerprints.add(tenant, track_id, hashes, times))
            duplicates = await self._within(
                self.fingerprints.duplicates(tenant, track_id, hashes, times)
            )
            await self._within(self.catalog.set_duplicates(tenant, track_id, duplicates))
        if await self._deleted(tenant, track_id):  # deleted meanwhile
            raise PermanentError(DELETED_REASON)
        return Fingerprinted(
            track=event.track,
            hashes=int(hashes.size),
            windows=windows,
            duplicates=duplicates,
            fingerprint_version=self.version,
        )
