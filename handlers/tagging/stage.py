"""Tagging stage: analysed → tagged. The musicnn models listen to the analysis audio in the
worker pool (warm per process) and give 100 tag probabilities and the learned embedding; then the
heuristic tagger (model labels + feature classes) — or, when configured, the LLM chain, which is
shown the model tags — names the track. When every LLM provider fails the heuristic answer is
used, so tagging never blocks the pipeline."""

from __future__ import annotations

import functools

import msgspec
import structlog

from handlers.errors import PermanentError
from handlers.jobs import listen_file
from handlers.pool import WorkerPool
from handlers.tagging.heuristic import heuristic_tags
from handlers.tagging.learned import learned_labels
from handlers.tagging.llm import LLMTagger, TaggingUnavailable
from handlers.understanding.weights import check_weights
from schemas.events import Analysed, Tagged
from schemas.payloads import Tags, TagScores
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore
from streams.names import Stage

log = structlog.get_logger("tagging")


class TaggingStage:
    stage = Stage.TAGGING
    input_type = Analysed
    version = 2  # 2: musicnn tag probabilities and embedding

    def __init__(
        self, settings: Settings, blobs: BlobStore, pool: WorkerPool, llm: LLMTagger | None
    ) -> None:
        check_weights()  # WeightsUnavailableError now, with the fix, rather than on every track
        self.settings = settings
        self.blobs = blobs
        self.pool = pool
        self.llm = llm

    async def _listen(self, event: Analysed) -> TagScores:
        try:
            async with self.blobs.local_copy(event.audio.analysis_key) as path:
                job = functools.partial(
                    listen_file, str(path), max_patches=self.settings.musicnn_patches
                )
                return await self.pool.run(job, timeout_s=self.settings.decode_timeout_s)
        except BlobNotFound:
            raise PermanentError("the analysis audio is missing from the blob store") from None

    async def handle(self, event: Analysed) -> Tagged:
        scores = await self._listen(event)
        filename = event.track.filename
        tags: Tags | None = None
        if self.llm is not None:
            try:
                answer = await self.llm.tag(event.features, filename=filename, scores=scores)
            except TaggingUnavailable as exc:
                log.warning("llm_tagging_unavailable_using_heuristic", reason=str(exc))
            else:
                learned = learned_labels(scores)
                tags = msgspec.structs.replace(
                    answer, instruments=learned.instruments, vocals=learned.vocals, scores=scores
                )
        if tags is None:
            tags = heuristic_tags(event.features, scores, filename=filename)
        return Tagged(track=event.track, audio=event.audio, features=event.features, tags=tags)
