"""A worker: the chosen stages as FastStream pull consumers over one NATS connection.

`tonestream worker STAGE` runs one stage (the K3s shape); `tonestream up` runs them all in one
process. Resources are opened only for the stages that need them and closed together. A worker
also answers the search-example queries its pools can (see `handlers.query`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage

from handlers.advisories import subscribe_advisories
from handlers.decode.stage import DecodeStage
from handlers.embedding.stage import EmbeddingStage
from handlers.features.stage import FeaturesStage
from handlers.fingerprint.service import FingerprintService
from handlers.indexing.stage import IndexingStage
from handlers.pool import WorkerPool
from handlers.query.answers import AudioAnswers, SemanticAnswers
from handlers.query.service import QueryResponder
from handlers.repair import Repairer
from handlers.runtime import StageCore, StageRunner
from handlers.status import subscribe_status
from handlers.tagging.llm import open_llm_tagger
from handlers.tagging.stage import TaggingStage
from schemas.settings import Settings
from stores.blobs import BlobStore, open_blob_store
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.names import AUDIO_STREAM, Stage, consumer_name, stage_filter
from streams.publish import EventPublisher
from streams.topology import ensure_topology, stage_consumer_config

log = structlog.get_logger("worker")


class Worker:
    """Owns the broker, the pools and the stores of one worker process."""

    def __init__(self, settings: Settings, stages: Sequence[Stage], nats_url: str, mongo_url: str):
        self.settings = settings
        self.stages = list(stages)
        self.nats_url = nats_url
        self.mongo_url = mongo_url
        # The runner logs one summary line per message; FastStream keeps its warnings and errors.
        faststream_log = logging.getLogger("tonestream.faststream")
        faststream_log.setLevel(logging.WARNING)
        self.broker = NatsBroker(
            nats_url, logger=faststream_log, graceful_timeout=settings.ack_wait_s
        )
        self._cleanup = contextlib.AsyncExitStack()
        self.runners: dict[Stage, StageRunner] = {}
        self.catalog: Catalog | None = None
        self.vectors: VectorIndex | None = None
        self.dsp_pool: WorkerPool | None = None  # decoding, DSP and the tag models
        self.model_pool: WorkerPool | None = None  # CLIP, one process, for embedding
        self._repair: Repairer | None = None
        self._repair_task: asyncio.Task[None] | None = None
        self._queries: QueryResponder | None = None
        self.fingerprints: FingerprintService | None = None

    # -- resources -------------------------------------------------------------------------
    async def _pool(self, size: int, timeout_s: float | None = None) -> WorkerPool:
        pool = WorkerPool(size, self.settings.worker_memory_mb, timeout_s)
        self._cleanup.push_async_callback(pool.close)
        return pool

    async def _catalog(self) -> Catalog:
        if self.catalog is None:
            self.catalog = await Catalog.open(self.mongo_url, self.settings.mongo_db)
            self._cleanup.push_async_callback(self.catalog.close)
            await self.catalog.ensure_indexes()
        return self.catalog

    async def _vectors(self) -> VectorIndex:
        if self.vectors is None:
            self.vectors = await VectorIndex.open(self.settings)
            self._cleanup.push_async_callback(self.vectors.close)
        return self.vectors

    async def _build_cores(self, blobs: BlobStore) -> list[StageCore[Any]]:
        """The stage cores; the DSP and model pools stay reachable for the query answers."""
        settings = self.settings
        if {Stage.DECODE, Stage.FEATURES, Stage.TAGGING, Stage.FINGERPRINT} & set(self.stages):
            self.dsp_pool = await self._pool(settings.worker_count)
        if Stage.EMBEDDING in self.stages and settings.clip_enabled:
            self.model_pool = await self._pool(1, settings.model_timeout_s)  # no CLIP call hangs
        cores: list[StageCore[Any]] = []
        for stage in self.stages:
            if stage is Stage.DECODE:
                assert self.dsp_pool
                cores.append(DecodeStage(settings, blobs, self.dsp_pool))
            elif stage is Stage.FEATURES:
                assert self.dsp_pool
                cores.append(FeaturesStage(settings, blobs, self.dsp_pool))
            elif stage is Stage.TAGGING:
                assert self.dsp_pool
                tagger = await open_llm_tagger(settings, self.broker.connection, self._cleanup)
                cores.append(TaggingStage(settings, blobs, self.dsp_pool, tagger))
            elif stage is Stage.EMBEDDING:
                cores.append(EmbeddingStage(settings, self.model_pool))
            elif stage is Stage.INDEXING:
                catalog, vectors = await self._catalog(), await self._vectors()
                cores.append(IndexingStage(settings, catalog, vectors, blobs))
            else:
                assert self.dsp_pool
                self.fingerprints = FingerprintService.open(
                    self._cleanup, settings, await self._catalog(), blobs, self.dsp_pool
                )
                cores.append(self.fingerprints.stage)
        return cores

    def _query_responder(self, blobs: BlobStore) -> QueryResponder:
        """Answers search-example queries with the pools above: semantic ones where the embedding
        stage runs (its model pool), audio ones where a DSP pool is."""
        semantic = (
            SemanticAnswers(self.settings, blobs, self.model_pool)
            if Stage.EMBEDDING in self.stages
            else None
        )
        audio = AudioAnswers(self.settings, blobs, self.dsp_pool) if self.dsp_pool else None
        return QueryResponder(self.broker.connection, self.settings, semantic=semantic, audio=audio)

    # -- subscriptions ---------------------------------------------------------------------
    def _subscribe_stage(self, runner: StageRunner) -> None:
        stage = runner.core.stage
        subscriber = self.broker.subscriber(
            stage_filter(stage),
            stream=JStream(AUDIO_STREAM, declare=False),
            durable=consumer_name(stage),
            config=stage_consumer_config(stage, self.settings),
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            ack_policy=AckPolicy.MANUAL,
            max_workers=self.settings.worker_count,
            title=f"{stage} stage",
        )

        async def on_message(msg: NatsMessage) -> None:
            await runner(msg.raw_message)

        subscriber(on_message)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        await ensure_topology(js, self.settings)
        publisher = EventPublisher(js)
        blobs = open_blob_store(self.settings)
        for core in await self._build_cores(blobs):
            runner = StageRunner(core, publisher, self.settings)
            self.runners[core.stage] = runner
            self._subscribe_stage(runner)
            subscribe_advisories(self.broker, runner)
        if Stage.INDEXING in self.stages:  # the catalog's owner projects status and repairs
            catalog = await self._catalog()
            subscribe_status(self.broker, catalog, self.settings)
            self._repair = Repairer(js, catalog, self.settings)
        self._queries = self._query_responder(blobs)
        await self._queries.start()  # before the stages consume: it warms CLIP first
        if self.fingerprints is not None:
            await self.fingerprints.start(self.broker)
        await self.broker.start()
        if self._repair is not None and self.settings.repair_interval_s > 0:
            self._repair_task = asyncio.create_task(self._repair.run())
        log.info("worker_started", stages=[str(s) for s in self.stages], nats=self.nats_url)

    async def stop(self) -> None:
        if self._repair_task is not None:
            self._repair_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repair_task
        if self._queries is not None:
            await self._queries.stop()  # answers in flight finish while the pools are open
        if self.fingerprints is not None:
            await self.fingerprints.stop()
        await self.broker.stop()  # waits for in-flight handlers (graceful_timeout)
        await self._cleanup.aclose()
        log.info("worker_stopped")
