"""A worker: the chosen stages as FastStream pull consumers over one NATS connection.

`tonestream worker STAGE` runs one stage (the K3s shape); `tonestream up` runs them all in one
process. Resources are opened only for the stages that need them and closed together. A worker
also answers the search-example queries its pools can (see `handlers.query`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from handlers.decode.stage import DecodeStage
from handlers.embedding.stage import EmbeddingStage
from handlers.features.stage import FeaturesStage
from handlers.indexing.stage import IndexingStage
from handlers.pool import WorkerPool
from handlers.query.answers import AudioAnswers, SemanticAnswers
from handlers.query.service import QueryResponder
from handlers.runtime import StageCore, StageRunner
from handlers.tagging.llm import LLMTagger
from handlers.tagging.stage import TaggingStage
from schemas.events import Progress, TrackEvent, decode
from schemas.settings import Settings
from stores.blobs import BlobStore, open_blob_store
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.kv import KVTagCache
from streams.names import (
    ADVISORY_QUEUE,
    AUDIO_STREAM,
    MAX_DELIVERIES_ADVISORY,
    PROGRESS_STREAM,
    PROGRESS_SUBJECTS,
    STATUS_CONSUMER,
    Stage,
    consumer_name,
    stage_filter,
    stage_of_consumer,
)
from streams.publish import EventPublisher
from streams.topology import ensure_topology, stage_consumer_config, status_consumer_config

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
        self._advisories: Subscription | None = None
        self._queries: QueryResponder | None = None

    # -- resources -------------------------------------------------------------------------
    async def _pool(self, size: int) -> WorkerPool:
        pool = WorkerPool(size, self.settings.worker_memory_mb)
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
        if {Stage.DECODE, Stage.FEATURES, Stage.TAGGING} & set(self.stages):
            self.dsp_pool = await self._pool(settings.worker_count)
        if Stage.EMBEDDING in self.stages and settings.clip_enabled:
            self.model_pool = await self._pool(1)
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
                cores.append(TaggingStage(settings, blobs, self.dsp_pool, await self._llm_tagger()))
            elif stage is Stage.EMBEDDING:
                cores.append(EmbeddingStage(settings, self.model_pool))
            else:
                cores.append(IndexingStage(settings, await self._catalog(), await self._vectors()))
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

    async def _llm_tagger(self) -> LLMTagger | None:
        if self.settings.tagger != "llm":
            return None
        tagger = LLMTagger(
            self.settings.llm_providers,
            timeout_s=self.settings.llm_timeout_s,
            requests_per_minute=self.settings.llm_requests_per_minute,
            cache=await KVTagCache.open(self.broker.connection.jetstream()),
        )
        self._cleanup.push_async_callback(tagger.aclose)
        return tagger

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

    def _subscribe_status(self, catalog: Catalog) -> None:
        subscriber = self.broker.subscriber(
            PROGRESS_SUBJECTS,
            stream=JStream(PROGRESS_STREAM, declare=False),
            durable=STATUS_CONSUMER,
            config=status_consumer_config(self.settings),
            pull_sub=PullSub(batch_size=50, timeout=1.0),
            ack_policy=AckPolicy.MANUAL,
            title="catalog status projection",
        )

        async def on_progress(msg: NatsMessage) -> None:
            event = decode(msg.raw_message.data)
            if isinstance(event, Progress):
                await catalog.apply_progress(event)
            await msg.raw_message.ack()

        subscriber(on_progress)

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """A message nobody acked in max_deliver attempts (the worker died each time) → failed."""
        data: dict[str, Any] = json.loads(advisory.data)
        stage = stage_of_consumer(str(data.get("consumer", "")))
        runner = self.runners.get(stage) if stage else None
        if runner is None:
            return
        stored = await self.broker.connection.jetstream().get_msg(AUDIO_STREAM, data["stream_seq"])
        event = decode(stored.data or b"")
        if isinstance(event, TrackEvent):
            deliveries = data.get("deliveries", self.settings.max_deliver)
            reason = f"gave up after {deliveries} deliveries with no answer from a worker"
            await runner.fail(event, reason)

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
        if Stage.INDEXING in self.stages:
            self._subscribe_status(await self._catalog())
        self._advisories = await self.broker.connection.subscribe(
            MAX_DELIVERIES_ADVISORY, queue=ADVISORY_QUEUE, cb=self._on_max_deliveries
        )
        self._queries = self._query_responder(blobs)
        await self._queries.start()  # before the stages consume: it warms CLIP first
        await self.broker.start()
        log.info("worker_started", stages=[str(s) for s in self.stages], nats=self.nats_url)

    async def stop(self) -> None:
        if self._advisories is not None:
            await self._advisories.unsubscribe()
        if self._queries is not None:
            await self._queries.stop()  # answers in flight finish while the pools are open
        await self.broker.stop()  # waits for in-flight handlers (graceful_timeout)
        await self._cleanup.aclose()
        log.info("worker_stopped")
