"""Decode stage: uploaded → decoded. Probes and decodes in the pool, stores the analysis audio
and the cover art; the event carries the loudness and the file's tags."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from handlers.decode.core import DecodeError, decode_to_analysis
from handlers.errors import PermanentError
from handlers.pool import WorkerPool
from schemas.events import Decoded, Uploaded
from schemas.payloads import TrackRef
from schemas.settings import Settings
from stores.blobs import BlobNotFound, BlobStore
from streams.names import Stage, analysis_blob_key, cover_blob_key


def analysis_key(track: TrackRef) -> str:
    return analysis_blob_key(track.tenant, track.track_id)


class DecodeStage:
    stage = Stage.DECODE
    input_type = Uploaded
    version = 2  # PyAV: loudness on the source channels, tags and cover art

    def __init__(self, settings: Settings, blobs: BlobStore, pool: WorkerPool) -> None:
        self.settings = settings
        self.blobs = blobs
        self.pool = pool

    async def handle(self, event: Uploaded) -> Decoded:
        key = analysis_key(event.track)
        cover_key = None
        try:
            async with self.blobs.local_copy(event.track.blob_key) as source:
                with tempfile.TemporaryDirectory(prefix="tonestream-decode-") as tmp:
                    target = Path(tmp) / "analysis.flac"
                    cover = Path(tmp) / "cover"
                    decode = functools.partial(
                        decode_to_analysis,
                        cover_path=str(cover),
                        target_rate=self.settings.analysis_sample_rate,
                        max_duration_s=self.settings.max_duration_s,
                        timeout_s=self.settings.decode_timeout_s,
                    )
                    # the pool's limit is a backstop: the decoder's readable timeout fires first
                    result = await self.pool.run(
                        decode,
                        str(source),
                        str(target),
                        timeout_s=self.settings.decode_timeout_s + 30,
                    )
                    await self.blobs.put_file(key, target)
                    if result.cover_type:
                        cover_key = cover_blob_key(event.track.tenant, event.track.track_id)
                        await self.blobs.put_file(cover_key, cover)
        except DecodeError as exc:
            raise PermanentError(exc.reason) from None
        except BlobNotFound:
            raise PermanentError("the uploaded file is missing from the blob store") from None
        return Decoded(track=event.track, audio=result.to_payload(key, cover_key))
