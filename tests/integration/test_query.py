"""Search examples → vectors over NATS request/reply, against a real nats-server and real workers.

One module-wide worker runs decode → features → tagging → embedding with CLIP on random weights
(loaded once; no weights can be downloaded here), so a query's vector can be checked against the
vectors the pipeline itself computes for the same track. Degraded answers (no worker, CLIP off,
no weights) use their own short-lived servers and workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import numpy as np
import pytest
import soundfile as sf
from nats.aio.client import Client
from nats.aio.msg import Msg
from PIL import Image

from handlers.embedding.audio import semantic_text
from handlers.embedding.clip import NO_WEIGHTS
from handlers.query.answers import EXAMPLE_MAX_S
from handlers.worker import Worker
from schemas.events import Embedded
from schemas.payloads import AUDIO_VECTOR_DIM, SEMANTIC_VECTOR_DIM
from schemas.queries import AudioQuery, QueryVector, SemanticQuery
from schemas.settings import Settings, settings_from_env
from stores.blobs import BlobStore, LocalBlobStore
from streams.names import QUERY_AUDIO_SUBJECT, QUERY_SEMANTIC_SUBJECT, Stage, query_blob_key
from streams.publish import EventPublisher
from streams.query import request_audio_vector, request_semantic_vector
from streams.server import EmbeddedNats
from tests.integration.kit import TENANT, audio_events, upload, wait_until
from tests.synth import write_track

TIMEOUT_S = 30.0
PROMPT_S = 1.0  # "at once": well under any timeout
CLIP_MODEL = "ViT-B-32"
ANALYSIS_STAGES = [Stage.DECODE, Stage.FEATURES, Stage.TAGGING, Stage.EMBEDDING]


@dataclass
class Stack:
    settings: Settings
    nc: Client
    blobs: BlobStore
    nats_url: str

    async def park(self, data: bytes) -> str:
        """What the gateway does with an image or audio example: a blob under a query key."""
        key = query_blob_key(TENANT, uuid.uuid4().hex)
        await self.blobs.put_bytes(key, data)
        return key

    def worker(self, stages: list[Stage], **overrides: object) -> Worker:
        settings = self.settings
        if overrides:
            fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
            settings = settings_from_env({}, **{**fields, **overrides})
        return Worker(settings, stages, self.nats_url, "")


@contextlib.asynccontextmanager
async def _stack(folder: Path, **settings: object) -> AsyncIterator[Stack]:
    config = settings_from_env(
        {}, data_dir=str(folder / "var"), query_timeout_s=TIMEOUT_S, **settings
    )
    server = await EmbeddedNats.start(folder / "nats")
    nc = await nats.connect(server.url)
    try:
        yield Stack(config, nc, LocalBlobStore(config.data_path / "blobs"), server.url)
    finally:
        await nc.close()
        await server.stop()


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[Stack]:
    """A nats-server with no worker connected."""
    async with _stack(tmp_path, clip_enabled=False) as stack:
        yield stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A nats-server and one analysis worker with CLIP on random weights, for the whole module."""
    folder = tmp_path_factory.mktemp("query")
    async with _stack(folder, clip_pretrained=NO_WEIGHTS, workers=2) as stack:
        worker = stack.worker(ANALYSIS_STAGES)
        await worker.start()
        try:
            await request_semantic_vector(stack.nc, SemanticQuery(text="warm-up"), TIMEOUT_S)
            yield stack  # with CLIP loaded: the tests time answers, not the model load
        finally:
            await worker.stop()


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def png() -> bytes:
    image = Image.new("RGB", (96, 64), (200, 30, 30))
    image.paste((20, 40, 220), (0, 0, 48, 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def timed_semantic(stack: Stack, query: SemanticQuery) -> tuple[QueryVector, float]:
    started = time.monotonic()
    answer = await request_semantic_vector(stack.nc, query, TIMEOUT_S)
    return answer, time.monotonic() - started


async def timed_audio(stack: Stack, query: AudioQuery) -> tuple[QueryVector, float]:
    started = time.monotonic()
    answer = await request_audio_vector(stack.nc, query, TIMEOUT_S)
    return answer, time.monotonic() - started


def assert_unit_vector(answer: QueryVector, dim: int) -> list[float]:
    assert not answer.error, answer.error
    assert not answer.unavailable, answer.unavailable
    assert answer.vector is not None
    assert len(answer.vector) == dim
    assert math.isclose(norm(answer.vector), 1.0, rel_tol=1e-5)
    return answer.vector


# -- degraded answers: prompt, with a reason ---------------------------------------------------


async def test_with_no_worker_connected_queries_are_unavailable_at_once(bare: Stack) -> None:
    semantic, semantic_s = await timed_semantic(bare, SemanticQuery(text="calm piano"))
    audio, audio_s = await timed_audio(bare, AudioQuery(blob_key=query_blob_key(TENANT, "x")))

    assert semantic == QueryVector(unavailable="no semantic worker answered: none is connected")
    assert audio == QueryVector(unavailable="no audio worker answered: none is connected")
    assert semantic_s < PROMPT_S, semantic_s
    assert audio_s < PROMPT_S, audio_s


async def test_a_silent_or_garbled_worker_is_unavailable_not_an_exception(bare: Stack) -> None:
    async def silent(msg: Msg) -> None:
        pass

    async def garbled(msg: Msg) -> None:
        await msg.respond(b"not a query answer")

    await bare.nc.subscribe(QUERY_SEMANTIC_SUBJECT, cb=silent)
    await bare.nc.subscribe(QUERY_AUDIO_SUBJECT, cb=garbled)
    await bare.nc.flush()

    started = time.monotonic()
    timed_out = await request_semantic_vector(bare.nc, SemanticQuery(text="calm"), 0.3)
    waited = time.monotonic() - started
    unreadable, _ = await timed_audio(bare, AudioQuery(blob_key=query_blob_key(TENANT, "x")))

    assert timed_out == QueryVector(unavailable="no semantic worker answered within 0.3 s")
    assert waited < PROMPT_S, waited
    assert unreadable.vector is None
    assert unreadable.unavailable.startswith("the audio worker's answer is unreadable")


async def test_with_clip_disabled_semantic_queries_are_unavailable_at_once(bare: Stack) -> None:
    worker = bare.worker([Stage.EMBEDDING])  # no DSP pool: audio examples are not its job
    await worker.start()
    try:
        text, text_s = await timed_semantic(bare, SemanticQuery(text="calm piano"))
        image, _ = await timed_semantic(bare, SemanticQuery(image_key=await bare.park(png())))
        audio, _ = await timed_audio(bare, AudioQuery(blob_key=query_blob_key(TENANT, "x")))
    finally:
        await worker.stop()

    assert text.vector is None
    assert "disabled" in text.unavailable
    assert text_s < PROMPT_S, text_s
    assert image == text
    assert audio.unavailable == "no audio worker answered: none is connected"


async def test_without_clip_weights_semantic_queries_are_unavailable_with_the_reason(
    bare: Stack, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-checkpoint.pt")  # unlike a hub tag, never in a local cache
    worker = bare.worker([Stage.EMBEDDING], clip_enabled=True, clip_pretrained=missing)
    await worker.start()
    try:
        # the first answer waits for the failed load (importing torch takes seconds, the offline
        # hub fails at once); that it is not "no worker answered within 30 s" shows it never hangs
        first, _ = await timed_semantic(bare, SemanticQuery(text="calm piano"))
        second, second_s = await timed_semantic(bare, SemanticQuery(text="loud drums"))
    finally:
        await worker.stop()

    assert first.vector is None
    assert "could not be loaded" in first.unavailable
    assert missing in first.unavailable
    assert second == first
    assert second_s < PROMPT_S, second_s  # known from then on


# -- semantic vectors --------------------------------------------------------------------------


async def test_text_and_image_queries_get_unit_clip_vectors(stack: Stack) -> None:
    calm, _ = await timed_semantic(stack, SemanticQuery(text="calm ambient piano"))
    again, _ = await timed_semantic(stack, SemanticQuery(text="calm ambient piano"))
    loud, _ = await timed_semantic(stack, SemanticQuery(text="aggressive metal drums"))
    image, _ = await timed_semantic(stack, SemanticQuery(image_key=await stack.park(png())))

    assert assert_unit_vector(calm, SEMANTIC_VECTOR_DIM) == again.vector
    assert assert_unit_vector(loud, SEMANTIC_VECTOR_DIM) != calm.vector
    assert_unit_vector(image, SEMANTIC_VECTOR_DIM)
    assert calm.model == image.model == f"{CLIP_MODEL}/{NO_WEIGHTS}"


async def test_an_image_query_that_is_not_an_image_is_an_error(stack: Stack) -> None:
    text = await stack.park(b"just some text, not a picture\n" * 20)
    not_image, _ = await timed_semantic(stack, SemanticQuery(image_key=text))
    missing, _ = await timed_semantic(
        stack, SemanticQuery(image_key=query_blob_key(TENANT, "gone"))
    )

    assert not_image.vector is None
    assert not_image.error.startswith("not a decodable image"), not_image.error
    assert missing.error == "the query image is missing from the blob store"


# -- audio vectors -----------------------------------------------------------------------------


async def test_an_audio_example_gets_the_vectors_the_pipeline_computes(
    stack: Stack, tmp_path: Path
) -> None:
    track = write_track(
        tmp_path / "example.flac", format="FLAC", bpm=124.0, key="D", mode="minor", seconds=25.0
    )
    uploaded = await upload(stack.blobs, EventPublisher(stack.nc.jetstream()), track)

    async def embedded() -> Embedded | None:
        for event in await audio_events(stack.nc, "embedded"):
            if isinstance(event, Embedded) and event.track == uploaded.track:
                return event
        return None

    await wait_until(embedded, timeout_s=60, what="the pipeline to embed the track")
    event = await embedded()
    assert event is not None
    key = await stack.park(track.read_bytes())
    audio, _ = await timed_audio(stack, AudioQuery(blob_key=key))
    text = SemanticQuery(text=semantic_text(event.tags, event.features))
    caption, _ = await timed_semantic(stack, text)

    assert assert_unit_vector(audio, AUDIO_VECTOR_DIM) == event.vectors.audio
    assert audio.model is None
    # a text query lands in the tracks' semantic space: the track's own caption finds it exactly
    assert event.vectors.semantic is not None
    assert assert_unit_vector(caption, SEMANTIC_VECTOR_DIM) == event.vectors.semantic


async def test_audio_examples_that_cannot_be_used_are_errors_with_reasons(
    stack: Stack, tmp_path: Path
) -> None:
    text_file = await stack.park(b"just some text, not music\n" * 100)
    long_path = tmp_path / "long.wav"
    rate = 8000
    sf.write(long_path, np.zeros(int((EXAMPLE_MAX_S + 60) * rate), np.int16), rate)
    too_long = await stack.park(long_path.read_bytes())

    not_audio, _ = await timed_audio(stack, AudioQuery(blob_key=text_file))
    long, _ = await timed_audio(stack, AudioQuery(blob_key=too_long))
    missing, _ = await timed_audio(stack, AudioQuery(blob_key=query_blob_key(TENANT, "gone")))

    assert not_audio == QueryVector(error="not audio: looks like a text file")
    assert long.vector is None
    assert long.error.startswith("too long: 11.0 min exceeds the 10.0 min limit"), long.error
    assert missing == QueryVector(error="the audio example is missing from the blob store")


async def test_a_slow_example_holds_up_neither_text_queries_nor_other_examples(
    stack: Stack, tmp_path: Path
) -> None:
    long_example = write_track(
        tmp_path / "long-example.flac",
        format="FLAC",
        sample_rate=48000,  # stereo at 48 kHz: seconds of decoding even now that decode is fast
        stereo=True,
        bpm=100.0,
        key="E",
        mode="major",
        seconds=590.0,  # just under EXAMPLE_MAX_S
    )
    slow_key = await stack.park(long_example.read_bytes())
    bad_key = await stack.park(b"just some text, not music\n" * 100)
    # start both pool processes first: a cold process start (~1-4 s here) is not what is measured
    await asyncio.gather(*(timed_audio(stack, AudioQuery(blob_key=bad_key)) for _ in range(2)))
    slow = asyncio.create_task(timed_audio(stack, AudioQuery(blob_key=slow_key)))
    await asyncio.sleep(0.3)  # the slow analysis has started on the worker

    (bad, _), (text, _) = await asyncio.gather(
        timed_audio(stack, AudioQuery(blob_key=bad_key)),
        timed_semantic(stack, SemanticQuery(text="slow blues")),
    )
    still_running = not slow.done()
    (vector, slow_s) = await slow

    assert still_running, f"the fast queries waited for the slow one ({slow_s:.1f} s)"
    assert bad.error == "not audio: looks like a text file"
    assert_unit_vector(text, SEMANTIC_VECTOR_DIM)
    assert_unit_vector(vector, AUDIO_VECTOR_DIM)
