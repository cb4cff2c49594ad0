"""The fingerprint stage and its companions in one worker: the index's owning process, the
consumer that removes deleted tracks' fingerprints and the identify answers — all where the
index is, so it keeps one owner (`tonestream up` and a split deployment alike)."""

from __future__ import annotations

import contextlib

from faststream.nats import NatsBroker

from handlers.fingerprint.deletes import subscribe_deletes
from handlers.fingerprint.identify import IdentifyAnswers, IdentifyResponder
from handlers.fingerprint.stage import FingerprintStage
from handlers.pool import WorkerPool
from schemas.settings import Settings
from stores.blobs import BlobStore
from stores.catalog import Catalog
from stores.fingerprint_store import FingerprintStore, open_fingerprints


class FingerprintService:
    def __init__(self, store: FingerprintStore, stage: FingerprintStage) -> None:
        self.store = store
        self.stage = stage
        self._responder: IdentifyResponder | None = None

    @classmethod
    def open(
        cls,
        cleanup: contextlib.AsyncExitStack,
        settings: Settings,
        catalog: Catalog,
        blobs: BlobStore,
        pool: WorkerPool,
    ) -> FingerprintService:
        """Start the index's owning process (closed by `cleanup`) and build the stage on it."""
        store = open_fingerprints(settings)
        cleanup.push_async_callback(store.close)
        return cls(store, FingerprintStage(settings, catalog, store, blobs, pool))

    async def start(self, broker: NatsBroker) -> None:
        """Subscribe the delete consumer (before the broker starts) and the identify answers."""
        stage = self.stage
        subscribe_deletes(broker, self.store, stage.catalog, stage.settings)
        answers = IdentifyAnswers(stage.settings, stage.blobs, stage.pool, self.store)
        self._responder = IdentifyResponder(broker.connection, stage.settings, answers)
        await self._responder.start()

    async def stop(self) -> None:
        if self._responder is not None:
            await self._responder.stop()
