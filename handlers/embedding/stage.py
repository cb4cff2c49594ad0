"""Embedding stage: tagged → embedded. The acoustic vector always (the standardised musicnn
embedding the tagging stage carried in the event); the CLIP text vector when weights load (in a
one-process model pool, so DSP workers stay small); otherwise the event says semantic search is
unavailable and search falls back to keywords."""

from __future__ import annotations

from handlers.embedding.audio import NoModelScoresError, audio_vector, semantic_text
from handlers.errors import PermanentError
from handlers.jobs import embed_text
from handlers.pool import WorkerPool
from schemas.events import Embedded, Tagged
from schemas.payloads import Vectors
from schemas.settings import Settings
from streams.names import Stage


class EmbeddingStage:
    stage = Stage.EMBEDDING
    input_type = Tagged

    def __init__(self, settings: Settings, model_pool: WorkerPool | None) -> None:
        self.settings = settings
        self.model_pool = model_pool  # None: CLIP disabled, or found unavailable

    @property
    def version(self) -> int:
        return self.settings.embedding_version

    async def _semantic(self, text: str) -> tuple[list[float], str] | None:
        if self.model_pool is None:
            return None
        result = await self.model_pool.run(
            embed_text,
            text,
            self.settings.clip_model,
            self.settings.clip_pretrained,
            self.settings.clip_allow_download,
        )
        pool = self.model_pool
        if result is None and pool is not None:  # concurrent calls may all get None
            self.model_pool = None
            await pool.close()  # no weights: stop asking (the pool logged why, once)
        return result

    async def handle(self, event: Tagged) -> Embedded:
        try:
            audio = audio_vector(event.tags.scores)
        except NoModelScoresError as exc:
            raise PermanentError(str(exc)) from None
        semantic = await self._semantic(semantic_text(event.tags, event.features))
        vectors = Vectors(
            audio=audio,
            semantic=semantic[0] if semantic else None,
            semantic_model=semantic[1] if semantic else None,
        )
        return Embedded(
            track=event.track,
            audio=event.audio,
            features=event.features,
            tags=event.tags,
            vectors=vectors,
            embedding_version=self.version,
        )
