"""Features stage: decoded → analysed. Measures the analysis audio in the pool."""

from __future__ import annotations

from handlers.errors import PermanentError
from handlers.jobs import analyse_file
from handlers.pool import WorkerPool
from schemas.events import Analysed, Decoded
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore
from streams.names import Stage


class FeaturesStage:
    stage = Stage.FEATURES
    input_type = Decoded
    version = 3  # 2: loudness from the source channels (decode v2); 3: the tempo level model

    def __init__(self, settings: Settings, blobs: BlobStore, pool: WorkerPool) -> None:
        self.settings = settings
        self.blobs = blobs
        self.pool = pool

    async def handle(self, event: Decoded) -> Analysed:
        try:
            async with self.blobs.local_copy(event.audio.analysis_key) as path:
                features = await self.pool.run(
                    analyse_file,
                    str(path),
                    event.audio.loudness,
                    timeout_s=self.settings.decode_timeout_s,
                )
        except BlobNotFound:
            raise PermanentError("the analysis audio is missing from the blob store") from None
        return Analysed(track=event.track, audio=event.audio, features=features)
