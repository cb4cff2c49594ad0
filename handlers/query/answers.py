"""What a worker answers when asked for a search example's vector, using the pools it already runs.

- Semantic (text or image → CLIP): in the embedding stage's one-process model pool, so the model
  is loaded once per worker and shared with the stage. CLIP is loaded when the worker starts, so
  whether it has weights is known before the stage or a query first needs it: without weights
  (or with CLIP disabled) every query is answered at once with `unavailable` and the reason.
- Audio (a clip → the learned `audio` vector): in the DSP pool, by the very functions the decode,
  tagging and embedding stages apply to a track (decode, the musicnn models, standardisation),
  so an example and a track are comparable.
  An example is at most EXAMPLE_MAX_S long; a longer one is refused (search "similar to" an
  uploaded track instead) rather than silently cut, since its vector would describe only a part.

A fault of the example itself (not audio, not an image, too long, missing) raises PermanentError
with a readable reason; the responder turns that into `error`, anything else into `unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import structlog

from handlers.decode.core import DecodeError
from handlers.errors import PermanentError
from handlers.jobs import embed_image, embed_text, example_audio_vector, load_clip
from handlers.pool import WorkerPool
from schemas.queries import AudioQuery, QueryVector, SemanticQuery
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore

EXAMPLE_MAX_S = 600.0  # an audio example is analysed whole; longer ones are refused
MAX_IMAGE_BYTES = 20 << 20  # the image travels to the model process in memory
_DECODE_MARGIN_S = 30.0  # the pool's time limit is a backstop: the decoder's own fires first

log = structlog.get_logger("query")


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


class SemanticAnswers:
    """Text and images → CLIP vectors, in the same space as the tracks' `semantic` vectors."""

    def __init__(self, settings: Settings, blobs: BlobStore, model_pool: WorkerPool | None):
        self.settings = settings
        self.blobs = blobs
        self.model_pool = model_pool  # None: CLIP is disabled on this worker
        self._clip = (settings.clip_model, settings.clip_pretrained, settings.clip_allow_download)
        self._loading: asyncio.Task[str] | None = None

    def start(self) -> None:
        """Load CLIP now. Call before the stages consume: the model process's first call is ours,
        so this learns about missing weights before the embedding stage closes the pool."""
        if self.model_pool is not None and self._loading is None:
            self._loading = asyncio.create_task(self._load(self.model_pool))

    async def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading

    async def _load(self, pool: WorkerPool) -> str:
        """Why semantic queries cannot be answered, or the empty string once CLIP is loaded."""
        try:
            loaded = await pool.run(load_clip, *self._clip)
        except Exception as exc:  # noqa: BLE001 - reported to every semantic query instead
            reason = f"CLIP could not be started: {type(exc).__name__}: {exc}"
            log.warning("semantic_queries_unavailable", reason=reason)
            return reason
        if not loaded:
            model, pretrained, _ = self._clip
            return f"CLIP weights for {model}/{pretrained} could not be loaded (see the worker log)"
        return ""

    async def _unavailable(self) -> str:
        if self._loading is None:
            return "semantic search is disabled on this worker (TONESTREAM_CLIP_ENABLED=false)"
        return await asyncio.shield(self._loading)  # one waiter giving up must not cancel the load

    async def answer(self, query: SemanticQuery) -> QueryVector:
        unavailable = await self._unavailable()
        if unavailable:
            return QueryVector(unavailable=unavailable)
        assert self.model_pool is not None  # _unavailable() answered for a missing pool
        if query.text is not None:
            result = await self.model_pool.run(embed_text, query.text, *self._clip)
        else:
            assert query.image_key is not None  # SemanticQuery holds exactly one of them
            image = await self._image(query.image_key)
            try:
                result = await self.model_pool.run(embed_image, image, *self._clip)
            except ValueError as exc:
                raise PermanentError(str(exc)) from None
        if result is None:  # the model process was replaced and could not reload the weights
            return QueryVector(unavailable="CLIP weights could not be loaded (see the worker log)")
        vector, model = result
        return QueryVector(vector=vector, model=model)

    async def _image(self, key: str) -> bytes:
        try:
            size = await self.blobs.size(key)
            if size > MAX_IMAGE_BYTES:
                raise PermanentError(
                    f"image too large: {_megabytes(size)} exceeds the "
                    f"{_megabytes(MAX_IMAGE_BYTES)} limit"
                )
            return await self.blobs.get_bytes(key)
        except BlobNotFound:
            raise PermanentError("the query image is missing from the blob store") from None


class AudioAnswers:
    """Audio examples → the pipeline's `audio` vector, in the worker's DSP pool."""

    def __init__(self, settings: Settings, blobs: BlobStore, dsp_pool: WorkerPool) -> None:
        self.settings = settings
        self.blobs = blobs
        self.dsp_pool = dsp_pool

    async def answer(self, query: AudioQuery) -> QueryVector:
        settings = self.settings
        job = functools.partial(
            example_audio_vector,
            target_rate=settings.analysis_sample_rate,
            max_duration_s=min(settings.max_duration_s, EXAMPLE_MAX_S),
            timeout_s=settings.decode_timeout_s,
            max_patches=settings.musicnn_patches,
        )
        try:
            async with self.blobs.local_copy(query.blob_key) as path:
                vector = await self.dsp_pool.run(
                    job, str(path), timeout_s=settings.decode_timeout_s + _DECODE_MARGIN_S
                )
        except DecodeError as exc:
            raise PermanentError(exc.reason) from None
        except BlobNotFound:
            raise PermanentError("the audio example is missing from the blob store") from None
        return QueryVector(vector=vector)
