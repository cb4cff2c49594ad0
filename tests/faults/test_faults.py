"""Faults on real servers, each under a minute: acknowledged writes survive SIGKILL, the status
projection outlives a catalog outage, unreadable inputs and hung stages end in `failed`, pool
time-outs are retried, max-delivery advisories reach a stage that runs in another process, and
the repair sweep brings back tracks a crash left in limbo."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from pymongo import AsyncMongoClient

from handlers.errors import PermanentError
from handlers.pool import PoolTimeoutError, WorkerPool
from handlers.repair import Repairer
from handlers.runtime import StageRunner
from handlers.worker import Worker
from schemas.events import Embedded, Failed, Indexed, Progress, Uploaded
from schemas.payloads import TrackRef
from schemas.settings import Settings, settings_from_env
from stores.blobs import LocalBlobStore
from stores.catalog import Catalog
from stores.embedded_mongo import start_embedded_mongo
from streams.names import (
    ADVISORY_STREAM,
    AUDIO_STREAM,
    PROGRESS_STREAM,
    STATUS_CONSUMER,
    Stage,
    audio_subject,
    consumer_name,
    progress_subject,
)
from streams.publish import EventPublisher
from streams.server import EmbeddedNats, free_port, nats_config, venv_binary
from streams.topology import ensure_topology
from tests.faults.kit import Tally, record_upload, start_worker, tally_outcome, worker_env
from tests.integration.kit import TENANT, audio_events, wait_until
from tests.synth import write_track


@dataclass
class System:
    settings: Settings
    nats_url: str
    mongo_url: str
    nc: Client
    catalog: Catalog
    blobs: LocalBlobStore
    publisher: EventPublisher


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": str(tmp_path / "var"),
        "mongo_db": f"faults_{tmp_path.name}"[:60],
        "backoff_s": (1.0, 1.0, 1.0),
        "max_deliver": 3,
        "workers": 1,
        "clip_enabled": False,
        "repair_interval_s": 0.0,
        "repair_grace_s": 0.0,
    }
    return settings_from_env({}, **(values | overrides))


@pytest.fixture
async def system(tmp_path: Path, mongo_server: str) -> AsyncIterator[System]:
    server = await EmbeddedNats.start(tmp_path / "nats")
    settings = _settings(tmp_path)
    nc = await nats.connect(server.url)
    await ensure_topology(nc.jetstream(), settings)
    catalog = await Catalog.open(mongo_server, settings.mongo_db)
    await catalog.ensure_indexes()
    blobs = LocalBlobStore(settings.data_path / "blobs")
    try:
        yield System(
            settings, server.url, mongo_server, nc, catalog, blobs, EventPublisher(nc.jetstream())
        )
    finally:
        await catalog.close()
        await nc.close()
        await server.stop()


@pytest.fixture(scope="module")
def track_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-tracks")
    return write_track(
        folder / "t.flac", format="FLAC", bpm=120, key="A", mode="minor", seconds=8.0
    )


# --- durability of the embedded servers ----------------------------------------------------------


async def test_the_embedded_catalog_keeps_acknowledged_writes_through_sigkill(
    tmp_path: Path,
) -> None:
    server = await start_embedded_mongo(tmp_path / "mongo")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server.uri)
    try:
        for i in range(300):
            await client.db.t.insert_one({"i": i})
        server.service.process.send_signal(signal.SIGKILL)
        await server.service.process.wait()
    finally:
        await client.close()
    again = await start_embedded_mongo(tmp_path / "mongo")
    client = AsyncMongoClient(again.uri)
    try:
        assert await client.db.t.count_documents({}) == 300
    finally:
        await client.close()
        await again.stop()


async def test_the_embedded_nats_server_syncs_every_write(tmp_path: Path) -> None:
    config = tmp_path / "nats.conf"
    config.write_text(nats_config(tmp_path / "store"))
    monitor = free_port()
    process = await asyncio.create_subprocess_exec(
        venv_binary("nats-server"), "-c", str(config), "-p", str(free_port()),
        "-m", str(monitor), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        varz: dict[str, object] = {}

        def read_varz() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=1) as r:
                    varz.update(json.load(r))
            except OSError:
                return False
            return True

        async def answers() -> bool:
            return await asyncio.to_thread(read_varz)

        await wait_until(answers, timeout_s=20, what="nats-server monitoring")
        jetstream = varz["jetstream"]
        assert isinstance(jetstream, dict)
        assert jetstream["config"]["sync_always"] is True
    finally:
        process.terminate()
        await process.wait()


# --- the status projection -----------------------------------------------------------------------


async def test_a_catalog_outage_delays_status_and_never_drops_it(
    tmp_path: Path, system: System
) -> None:
    """The projection's catalog is stopped while a track's last progress arrives, for longer
    than the old delivery limit allowed (3 deliveries, 1 s apart): once the catalog is back the
    status is `indexed`."""
    port = free_port()
    mongo = await start_embedded_mongo(tmp_path / "own-mongo", port=port)
    url = mongo.uri + "&serverSelectionTimeoutMS=1500"
    settings = _settings(tmp_path, ack_wait_s=1.0, backoff_s=())
    worker = Worker(settings, [Stage.INDEXING], system.nats_url, url)
    await worker.start()
    catalog = await Catalog.open(url, settings.mongo_db)
    try:
        await catalog.create_track(TENANT, "trk1", {"sha256": "ab", "created_at": time.time()})
        await mongo.stop()
        await system.nc.jetstream().publish(progress_subject(TENANT, "trk1"), b"not an event")
        for stage in Stage:
            for state in ("started", "finished"):
                progress = Progress(tenant=TENANT, track_id="trk1", stage=stage, state=state)
                await system.publisher.progress(progress)
        await asyncio.sleep(10)  # past 3 deliveries (ack_wait 1 s, 1.5 s per failing attempt)
        mongo = await start_embedded_mongo(tmp_path / "own-mongo", port=port)

        async def indexed() -> bool:
            doc = await catalog.get_track(TENANT, "trk1")
            return doc is not None and doc.get("status") == "indexed"

        await wait_until(indexed, timeout_s=30, what="the status after the outage")

        async def drained() -> bool:  # the unreadable message is skipped, not retried forever
            info = await system.nc.jetstream().consumer_info(PROGRESS_STREAM, STATUS_CONSUMER)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_until(drained, timeout_s=30, what="the projection to drain")
    finally:
        await worker.stop()
        await catalog.close()
        await mongo.stop()


# --- stage delivery semantics --------------------------------------------------------------------


def _unreadable_upload(track_id: str) -> bytes:
    """An `uploaded` event whose track is readable but whose content_type is not a string."""
    return json.dumps(
        {
            "type": "audio.uploaded.v1",
            "track": {"track_id": track_id, "tenant": TENANT, "blob_key": "k"},
            "content_type": 5,
        }
    ).encode()


async def test_an_unreadable_input_fails_its_track_with_a_reason(system: System) -> None:
    worker = Worker(system.settings, [Stage.DECODE], system.nats_url, system.mongo_url)
    await worker.start()
    try:
        await system.nc.jetstream().publish(
            audio_subject("uploaded", TENANT), _unreadable_upload("trk-bad"), stream=AUDIO_STREAM
        )

        async def failed() -> list[Failed]:
            return [
                e
                for e in await audio_events(system.nc, "failed")
                if isinstance(e, Failed) and e.track.track_id == "trk-bad"
            ]

        await wait_until(failed, timeout_s=30, what="failed for the unreadable event")
        (event,) = await failed()
        assert event.stage == "decode"
        assert "cannot read its input" in event.reason
    finally:
        await worker.stop()


async def test_a_pool_time_out_is_transient() -> None:
    pool = WorkerPool(1, 0)
    try:
        with pytest.raises(PoolTimeoutError) as caught:
            await pool.run(time.sleep, 30.0, timeout_s=0.5)  # light to spawn
        assert not isinstance(caught.value, PermanentError)
        await pool.run(time.sleep, 0.0, timeout_s=30.0)  # the pool was replaced and works
    finally:
        await pool.close()


async def test_a_call_without_its_own_limit_gets_the_pools() -> None:
    """The CLIP pool's calls name no limit: the pool's default (TONESTREAM_MODEL_TIMEOUT_S)
    still ends a hung one."""
    pool = WorkerPool(1, 0, default_timeout_s=0.5)
    try:
        with pytest.raises(PoolTimeoutError):
            await pool.run(time.sleep, 30.0)
    finally:
        await pool.close()


class _HungStage:
    """A stage whose call never returns (a hung CLIP or store call)."""

    stage = Stage.DECODE
    input_type = Uploaded
    version = 1

    async def handle(self, event: Uploaded) -> Uploaded:
        await asyncio.Event().wait()
        return event


async def test_a_hung_stage_is_redelivered_then_failed(system: System) -> None:
    settings = _settings(Path(system.settings.data_dir), stage_deadline_s=1.0, max_deliver=2)
    runner = StageRunner(_HungStage(), system.publisher, settings)
    ref = TrackRef(track_id="trk-hung", tenant=TENANT, blob_key="k")
    await system.publisher.publish(Uploaded(track=ref), stage="upload", version=1)
    js = system.nc.jetstream()
    sub = await js.pull_subscribe_bind(consumer_name(Stage.DECODE), AUDIO_STREAM)
    try:
        deliveries = 0
        while deliveries < 2:
            for msg in await sub.fetch(1, timeout=10):
                deliveries += 1
                await asyncio.wait_for(runner(msg), timeout=10)
    finally:
        await sub.unsubscribe()
    (failed,) = [e for e in await audio_events(system.nc, "failed") if isinstance(e, Failed)]
    assert failed.track.track_id == "trk-hung"
    assert "did not finish within 1 s" in failed.reason
    assert failed.reason.startswith("gave up after 2 attempts")


# --- max-delivery advisories, stages in separate processes --------------------------------------


async def test_max_deliveries_fail_the_track_with_stages_in_separate_processes(
    tmp_path: Path, system: System
) -> None:
    """A decode input nobody acks: the advisory is published while no decode worker runs and a
    features worker (another process) is connected; the decode worker started later fails it."""
    env = worker_env(system.settings, system.nats_url, system.mongo_url)
    log = tmp_path / "workers.log"
    features = start_worker(env, ["features"], log)
    decode: subprocess.Popen[bytes] | None = None
    try:
        ref = TrackRef(track_id="trk-poison", tenant=TENANT, blob_key="k")
        await system.publisher.publish(Uploaded(track=ref), stage="upload", version=1)
        sub = await system.nc.jetstream().pull_subscribe_bind(
            consumer_name(Stage.DECODE), AUDIO_STREAM
        )
        try:
            for _ in range(system.settings.max_deliver):  # a worker that dies on it each time
                await sub.fetch(1, timeout=10)
            # the next pull finds the message exhausted: the server publishes the advisory
            with pytest.raises(TimeoutError):
                await sub.fetch(1, timeout=3)
        finally:
            await sub.unsubscribe()

        async def exhausted() -> bool:
            info = await system.nc.jetstream().stream_info(ADVISORY_STREAM)
            return info.state.messages == 1

        await wait_until(exhausted, timeout_s=30, what="the max-delivery advisory")
        decode = start_worker(env, ["decode"], log)

        async def failed() -> list[Failed]:
            return [e for e in await audio_events(system.nc, "failed") if isinstance(e, Failed)]

        await wait_until(failed, timeout_s=50, what="failed from the advisory")
        (event,) = await failed()
        assert event.track.track_id == "trk-poison"
        assert event.stage == "decode"
        assert "gave up after 3 deliveries" in event.reason
    finally:
        for process in (features, decode):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


# --- repair --------------------------------------------------------------------------------------


async def _indexing_input_acked_without_output(system: System, track_file: Path) -> TrackRef:
    """A track whose `embedded` event the indexing stage acknowledged without any output (what
    a crash between ack and a lost write leaves behind)."""
    stages = [Stage.DECODE, Stage.FEATURES, Stage.TAGGING, Stage.EMBEDDING]
    worker = Worker(system.settings, stages, system.nats_url, system.mongo_url)
    await worker.start()
    try:
        ref = await record_upload(
            system.blobs, system.catalog, track_file, publish=system.publisher
        )

        async def embedded() -> bool:
            return any(
                isinstance(e, Embedded) and e.track.track_id == ref.track_id
                for e in await audio_events(system.nc, "embedded")
            )

        await wait_until(embedded, timeout_s=50, what="the embedded event")
    finally:
        await worker.stop()
    sub = await system.nc.jetstream().pull_subscribe_bind(
        consumer_name(Stage.INDEXING), AUDIO_STREAM
    )
    try:
        (msg,) = await sub.fetch(1, timeout=10)
        await msg.ack_sync()
    finally:
        await sub.unsubscribe()
    return ref


async def test_repair_brings_back_tracks_a_crash_left_in_limbo(
    system: System, track_file: Path
) -> None:
    """Three limbos: an indexing input acknowledged with no output, an upload whose `uploaded`
    was never published, and an indexed track whose status the catalog lost. Beside them, a
    record no gateway writes (an upload without its stored file) fails with its reason rather
    than stopping the sweep."""
    tally = Tally("repair")
    redrive = await _indexing_input_acked_without_output(system, track_file)
    unpublished = await record_upload(system.blobs, system.catalog, track_file, publish=None)
    fileless = {"filename": "gone.flac", "sha256": "0" * 64, "created_at": time.time()}
    assert await system.catalog.create_track(TENANT, "f" * 32, fileless | {"size_bytes": 1}) is None
    tally.faults = 2
    worker = Worker(system.settings, list(Stage), system.nats_url, system.mongo_url)
    await worker.start()
    try:
        repairer = Repairer(system.nc.jetstream(), system.catalog, system.settings)
        actions = await repairer.sweep()
        assert actions == {"re-driven": 1, "uploaded again": 1, "no stored file": 1}, actions
        failed = await system.catalog.get_track(TENANT, "f" * 32)
        assert failed is not None
        assert failed["status"] == "failed"
        assert "without its file" in failed["failure_reason"]
        ids = [redrive.track_id, unpublished.track_id]

        async def all_indexed() -> bool:
            indexed = {
                e.track.track_id
                for e in await audio_events(system.nc, "indexed")
                if isinstance(e, Indexed)
            }
            return set(ids) <= indexed

        await wait_until(all_indexed, timeout_s=50, what="both repaired tracks to be indexed")

        # the third limbo: the status projection's writes were lost
        await system.catalog.tracks.update_many(
            {"tenant": TENANT}, {"$set": {"status": "features"}, "$unset": {"status_at": ""}}
        )
        tally.faults += 1
        await asyncio.sleep(0.5)
        actions = await repairer.sweep()
        assert actions == {"status from the log": 2, "no stored file": 1}, actions
        assert await repairer.sweep() == {}  # nothing left in limbo
        assert worker.vectors is not None
        points = {i: int(await worker.vectors.get(TENANT, i) is not None) for i in ids}
        tally.ingested = len(ids)
        await tally_outcome(tally, system.nc, system.catalog, ids, points)
    finally:
        await worker.stop()
    print(tally.line())
    assert tally.clean, tally
