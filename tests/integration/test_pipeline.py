"""The pipeline end to end on real services: nats-server (JetStream), the Mongo-protocol
server, Qdrant local mode and a blob folder, with generated audio of known tempo and key."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import numpy as np
import pytest
import soundfile as sf
from nats.aio.client import Client
from nats.aio.msg import Msg

from handlers.worker import Worker
from schemas.events import Analysed, Embedded, Failed, Indexed, Progress, Uploaded, decode
from schemas.payloads import AUDIO_VECTOR_DIM
from schemas.settings import Settings, settings_from_env
from stores.blobs import BlobStore, LocalBlobStore
from stores.catalog import Catalog
from stores.vectors import VectorIndex
from streams.names import AUDIO_STREAM, CHAIN_STAGES, Stage
from streams.publish import EventPublisher
from streams.replay import rewind
from streams.server import EmbeddedNats
from streams.topology import ensure_topology
from tests.integration.kit import (
    TENANT,
    audio_events,
    finished_tracks,
    progress_events,
    upload,
    wait_until,
)
from tests.synth import write_track

STAGE_ORDER = [str(stage) for stage in CHAIN_STAGES]

# (bpm, key, mode, drums)
TRACKS = [(96.0, "A", "minor", True), (128.0, "C", "major", True), (140.0, "F#", "minor", True)]


@dataclass
class Pipeline:
    settings: Settings
    nc: Client
    publisher: EventPublisher
    blobs: BlobStore
    mongo_url: str
    nats_url: str
    catalog: Catalog
    worker: Worker | None = None

    async def start_worker(self, **overrides: object) -> Worker:
        if overrides:
            self.settings = settings_from_env({}, **{**_fields(self.settings), **overrides})
        worker = Worker(self.settings, list(Stage), self.nats_url, self.mongo_url)
        await worker.start()
        self.worker = worker
        return worker

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None


def _fields(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}


@pytest.fixture
async def pipeline(tmp_path: Path, mongo_server: str) -> AsyncIterator[Pipeline]:
    server = await EmbeddedNats.start(tmp_path / "nats")
    settings = settings_from_env(
        {},
        data_dir=str(tmp_path / "var"),
        mongo_db=f"t{os.getpid()}_{tmp_path.name}"[:60],
        backoff_s=(2.0, 2.0, 2.0),
        max_deliver=4,
        workers=2,
        clip_enabled=False,
    )
    nc = await nats.connect(server.url)
    await ensure_topology(nc.jetstream(), settings)
    blobs = LocalBlobStore(settings.data_path / "blobs")
    catalog = await Catalog.open(mongo_server, settings.mongo_db)
    pipe = Pipeline(
        settings, nc, EventPublisher(nc.jetstream()), blobs, mongo_server, server.url, catalog
    )
    try:
        yield pipe
    finally:
        await pipe.stop_worker()
        await catalog.close()
        await nc.close()
        await server.stop()


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("tracks")
    return [
        write_track(
            folder / f"{bpm:.0f}-{key}-{mode}.flac",
            format="FLAC",
            bpm=bpm,
            key=key,
            mode=mode,
            drums=drums,
            seconds=30.0,
            stereo=True,
            seed=i,
        )
        for i, (bpm, key, mode, drums) in enumerate(TRACKS)
    ]


async def _ingest(pipe: Pipeline, paths: list[Path]) -> list[Uploaded]:
    uploads = [await upload(pipe.blobs, pipe.publisher, path) for path in paths]
    ids = {u.track.track_id for u in uploads}

    async def all_done() -> bool:
        return ids <= set(await finished_tracks(pipe.nc))

    await wait_until(all_done, what="every track to be indexed or failed")
    return uploads


def _vectors(pipe: Pipeline) -> VectorIndex:
    """The worker's own vector index (Qdrant local mode has one owner per folder)."""
    assert pipe.worker is not None
    assert pipe.worker.vectors is not None
    return pipe.worker.vectors


async def test_three_tracks_are_indexed_with_tempo_key_and_progress(
    pipeline: Pipeline, tracks: list[Path]
) -> None:
    await pipeline.start_worker()
    uploads = await _ingest(pipeline, tracks)

    assert set((await finished_tracks(pipeline.nc)).values()) == {"indexed"}
    catalog, vectors = pipeline.catalog, _vectors(pipeline)
    assert await vectors.count(TENANT) == 3
    assert await catalog.count_tracks(TENANT) == 3
    for uploaded, (bpm, key, mode, _) in zip(uploads, TRACKS, strict=True):
        track_id = uploaded.track.track_id
        doc = await catalog.get_track(TENANT, track_id)
        assert doc is not None
        features = doc["features"]
        assert abs(features["tempo_bpm"] - bpm) / bpm <= 0.04, (features["tempo_bpm"], bpm)
        assert (features["key"], features["mode"]) == (key, mode)
        assert doc["tags"]["description"]
        scores = doc["tags"]["scores"]  # the models' tag probabilities, queryable
        assert len(scores["msd"]) == len(scores["mtt"]) == 50
        assert "embedding" not in scores  # it is the index's `audio` vector, not catalog data
        stored = await vectors.get(TENANT, track_id)
        assert stored is not None
        assert len(stored[0]["audio"]) == AUDIO_VECTOR_DIM

        progress = await progress_events(pipeline.nc, track_id)
        steps = [(p.stage, p.state) for p in progress if p.state != "percent"]
        steps = [step for step in steps if step[0] in STAGE_ORDER]  # fingerprint follows
        expected = [(stage, state) for stage in STAGE_ORDER for state in ("started", "finished")]
        assert steps == expected

        async def projected(track_id: str = track_id) -> bool:
            doc = await catalog.get_track(TENANT, track_id)
            return doc is not None and doc.get("status") == "indexed"

        await wait_until(projected, timeout_s=20, what="catalog status projection")


async def test_duplicate_upload_event_makes_one_chain(
    pipeline: Pipeline, tracks: list[Path]
) -> None:
    await pipeline.start_worker()
    first = await upload(pipeline.blobs, pipeline.publisher, tracks[0])
    assert not await pipeline.publisher.publish(first, stage="uploaded", version=1)
    chain = ["Uploaded", "Decoded", "Analysed", "Tagged", "Embedded", "Indexed", "Fingerprinted"]

    async def kinds() -> list[str]:
        return [type(e).__name__ for e in await audio_events(pipeline.nc)]

    async def chain_ended() -> bool:
        return chain[-1] in await kinds()

    await wait_until(chain_ended, what="the duplicated track's chain to end")
    assert await kinds() == chain


def _bad_files(folder: Path, good_flac: Path) -> dict[str, Path]:
    files = {
        "empty.wav": b"",
        "noise.mp3": os.urandom(64 * 1024),
        "notes.txt": b"just some text, not music\n" * 100,
    }
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    truncated = folder / "truncated.flac"
    data = good_flac.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    paths["truncated.flac"] = truncated
    return paths


async def test_bad_inputs_fail_with_reasons_and_the_worker_keeps_going(
    pipeline: Pipeline, tracks: list[Path], tmp_path: Path
) -> None:
    await pipeline.start_worker()
    bad = _bad_files(tmp_path, tracks[0])
    bad_uploads = {
        name: await upload(pipeline.blobs, pipeline.publisher, p) for name, p in bad.items()
    }
    good = await _ingest(pipeline, [tracks[1]])

    ends = await finished_tracks(pipeline.nc)
    assert ends[good[0].track.track_id] == "indexed"
    reasons = {name: ends[u.track.track_id] for name, u in bad_uploads.items()}
    assert all(reason.startswith("failed: ") for reason in reasons.values()), reasons
    assert "empty" in reasons["empty.wav"]
    assert "not audio" in reasons["notes.txt"]
    assert "truncated" in reasons["truncated.flac"].lower()
    assert "gave up" not in reasons["noise.mp3"]  # a permanent, explained failure, not retries

    failed = [e for e in await audio_events(pipeline.nc, "failed") if isinstance(e, Failed)]
    assert {e.stage for e in failed} == {"decode"}
    catalog, vectors = pipeline.catalog, _vectors(pipeline)
    assert await vectors.count(TENANT) == 1
    for uploaded in bad_uploads.values():
        assert await vectors.get(TENANT, uploaded.track.track_id) is None
        doc = await catalog.get_track(TENANT, uploaded.track.track_id)
        assert doc is None or ("features" not in doc and doc.get("status") == "failed")


async def test_replay_rebuilds_a_dropped_index_without_recomputing(
    pipeline: Pipeline, tracks: list[Path]
) -> None:
    await pipeline.start_worker()
    uploads = await _ingest(pipeline, tracks[:2])
    vectors = _vectors(pipeline)
    before = {u.track.track_id: await vectors.get(TENANT, u.track.track_id) for u in uploads}
    analysed_before = len(await audio_events(pipeline.nc, "analysed"))

    await vectors.drop()
    assert await rewind(pipeline.nc, Stage.INDEXING) > 0

    async def rebuilt() -> bool:
        try:
            return await vectors.count(TENANT) == len(uploads)
        except Exception:  # noqa: BLE001 - collection not re-created yet
            return False

    await wait_until(rebuilt, timeout_s=60, what="the index to be rebuilt by replay")
    for track_id, stored in before.items():
        assert await vectors.get(TENANT, track_id) == stored
    assert len(await audio_events(pipeline.nc, "analysed")) == analysed_before
    for uploaded in uploads:
        events = await progress_events(pipeline.nc, uploaded.track.track_id)
        stages = [p.stage for p in events if p.state != "percent"]
        assert stages.count("features") == 2  # started + finished once: never recomputed
        assert stages.count("indexing") == 4  # indexed twice


async def test_reembedding_with_a_new_version_replaces_vectors(
    pipeline: Pipeline, tracks: list[Path]
) -> None:
    await pipeline.start_worker()
    uploads = await _ingest(pipeline, tracks[:2])
    await pipeline.stop_worker()
    first = Settings().embedding_version
    new = first + 1

    await pipeline.start_worker(embedding_version=new)
    await rewind(pipeline.nc, Stage.EMBEDDING)

    async def reindexed() -> bool:
        indexed = [e for e in await audio_events(pipeline.nc, "indexed") if isinstance(e, Indexed)]
        return sum(e.embedding_version == new for e in indexed) == len(uploads)

    await wait_until(reindexed, timeout_s=60, what="re-embedded tracks to be indexed")
    catalog, vectors = pipeline.catalog, _vectors(pipeline)
    assert await vectors.count(TENANT) == len(uploads)
    for uploaded in uploads:
        stored = await vectors.get(TENANT, uploaded.track.track_id)
        assert stored is not None
        assert stored[1]["embedding_version"] == new
        doc = await catalog.get_track(TENANT, uploaded.track.track_id)
        assert doc is not None
        assert doc["embedding_version"] == new
    embedded = [e for e in await audio_events(pipeline.nc, "embedded") if isinstance(e, Embedded)]
    assert sorted(e.embedding_version for e in embedded) == [first, first, new, new]
    assert (
        len([e for e in await audio_events(pipeline.nc, "analysed") if isinstance(e, Analysed)])
        == 2
    )


def _worker_process(pipe: Pipeline) -> subprocess.Popen[bytes]:
    s = pipe.settings
    env = {
        **os.environ,
        "TONESTREAM_NATS_URL": pipe.nats_url,
        "TONESTREAM_MONGO_URL": pipe.mongo_url,
        "TONESTREAM_MONGO_DB": s.mongo_db,
        "TONESTREAM_DATA_DIR": s.data_dir,
        "TONESTREAM_BACKOFF_S": "[2, 2, 2]",
        "TONESTREAM_MAX_DELIVER": str(s.max_deliver),
        "TONESTREAM_WORKERS": str(s.workers),
        "TONESTREAM_CLIP_ENABLED": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "all"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_killed_worker_loses_nothing_and_duplicates_nothing(
    pipeline: Pipeline, tracks: list[Path]
) -> None:
    features_started = asyncio.Event()

    async def on_progress(msg: Msg) -> None:
        progress = decode(msg.data)
        if isinstance(progress, Progress) and (progress.stage, progress.state) == (
            "features",
            "started",
        ):
            features_started.set()

    watch = await pipeline.nc.subscribe(f"progress.{TENANT}.*", cb=on_progress)  # before upload
    first = _worker_process(pipeline)
    uploads = [await upload(pipeline.blobs, pipeline.publisher, tracks[0])]
    victim = uploads[0].track.track_id
    await asyncio.wait_for(features_started.wait(), timeout=60)
    os.killpg(first.pid, signal.SIGKILL)  # mid-message: features takes ≥ 0.2 s, this takes µs
    first.wait()
    await watch.unsubscribe()
    uploads += [await upload(pipeline.blobs, pipeline.publisher, path) for path in tracks[1:]]

    second = _worker_process(pipeline)
    try:
        ids = {u.track.track_id for u in uploads}

        async def all_indexed() -> bool:
            ends = await finished_tracks(pipeline.nc)
            return ids <= {k for k, v in ends.items() if v == "indexed"}

        await wait_until(all_indexed, what="every track to be indexed after the kill")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0

    starts = [(p.stage, p.state) for p in await progress_events(pipeline.nc, victim)]
    assert starts.count(("features", "started")) == 2  # redelivered after the kill
    info = await pipeline.nc.jetstream().stream_info(AUDIO_STREAM, subjects_filter="audio.>")
    assert info.state.subjects is not None
    for kind in ("uploaded", "decoded", "analysed", "tagged", "embedded", "indexed"):
        assert info.state.subjects.get(f"audio.{kind}.{TENANT}") == len(uploads), kind
    assert await pipeline.catalog.count_tracks(TENANT) == len(uploads)
    vectors = await VectorIndex.open(pipeline.settings)
    try:
        assert await vectors.count(TENANT) == len(uploads)
    finally:
        await vectors.close()


async def test_a_long_decode_reports_percent_progress(pipeline: Pipeline, tmp_path: Path) -> None:
    """The decode of a 20-minute file takes seconds: its bar moves, then the stage finishes."""
    rate = 44100
    rng = np.random.default_rng(5)
    long_file = tmp_path / "long.flac"
    with sf.SoundFile(long_file, "w", rate, 2, format="FLAC") as out:
        for _ in range(20 * 60 // 10):
            out.write(0.1 * rng.standard_normal((10 * rate, 2)).astype(np.float32))
    await pipeline.start_worker()
    [uploaded] = await _ingest(pipeline, [long_file])

    decode = [
        e
        for e in await progress_events(pipeline.nc, uploaded.track.track_id)
        if e.stage == "decode"
    ]

    states = [e.state for e in decode]
    assert states[0] == "started"
    assert states[-1] == "finished"
    percents = [e.percent for e in decode if e.state == "percent"]
    assert percents, f"no percent progress in {states}"
    assert percents == sorted(percents)
    assert all(0 < p < 100 for p in percents)
    assert set(states[1:-1]) == {"percent"}
