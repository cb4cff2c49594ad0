"""The cluster fault loop: a real 3-node nats-server JetStream cluster on loopback (the shape of
infra/nats/cluster.conf: routes between the nodes, `sync_interval: always`), streams at R3, each
stage in a process of its own. The AUDIO stream's leader is killed (SIGKILL) mid-ingest and
started again later; every acknowledged upload must be indexed exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

from bench.faults import make_tracks
from schemas.events import Indexed, Uploaded
from schemas.settings import Settings, settings_from_env
from stores.blobs import LocalBlobStore
from stores.catalog import Catalog
from stores.embedded_mongo import start_embedded_mongo
from stores.vectors import VectorIndex
from streams.names import AUDIO_STREAM, Stage
from streams.publish import EventPublisher
from streams.server import ChildService, accepts_tcp, free_port, venv_binary
from streams.topology import ensure_topology
from tests.faults.kit import TENANT, record_upload, start_worker, worker_env
from tests.integration.kit import audio_events


@dataclass
class Node:
    name: str
    port: int
    config: Path
    service: ChildService | None = None

    async def start(self) -> None:
        argv = [venv_binary("nats-server"), "-c", str(self.config)]

        async def ready() -> bool:
            return await accepts_tcp("127.0.0.1", self.port)

        log = self.config.with_suffix(".log")
        self.service = await ChildService.start(self.name, argv, log, ready)

    async def kill(self) -> None:
        assert self.service is not None
        self.service.process.send_signal(signal.SIGKILL)
        await self.service.process.wait()


def _node_config(name: str, port: int, route: int, routes: list[int], store: Path) -> str:
    return "\n".join(
        [
            f"server_name: {name}",
            f"listen: 127.0.0.1:{port}",
            "cluster {",
            "  name: tonestream",
            f"  listen: 127.0.0.1:{route}",
            "  routes: [" + ", ".join(f"nats://127.0.0.1:{r}" for r in routes) + "]",
            "}",
            f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n  sync_interval: always\n}}",
            "",
        ]
    )


@contextlib.asynccontextmanager
async def nats_cluster(work: Path) -> AsyncIterator[list[Node]]:
    ports, routes = [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    nodes = []
    for i in range(3):
        config = work / f"n{i}.conf"
        config.write_text(_node_config(f"n{i}", ports[i], routes[i], routes, work / f"n{i}"))
        nodes.append(Node(f"n{i}", ports[i], config))
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        yield nodes
    finally:
        for node in nodes:
            if node.service is not None:
                await node.service.stop()


async def _until_jetstream(nc: Client, settings: Settings, timeout_s: float = 60.0) -> None:
    """The cluster has a meta leader and the topology exists (R3)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await ensure_topology(nc.jetstream(), settings)
            return
        except (NatsError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _publish_acked(publisher: EventPublisher, event: Uploaded) -> None:
    """Publish until the cluster acknowledges it (a leader change refuses publishes a while)."""
    while True:
        try:
            await publisher.publish(event, stage="upload", version=1)
            return
        except (NatsError, TimeoutError):
            await asyncio.sleep(0.5)


async def measure_cluster(work: Path, tracks: int, seconds: float) -> dict[str, Any]:
    files = make_tracks(work / "cluster-tracks", tracks, seconds)
    data = work / "cluster"
    data.mkdir(parents=True, exist_ok=True)
    mongo = await start_embedded_mongo(data / "mongo")
    settings = settings_from_env(
        {},
        data_dir=str(data / "var"),
        stream_replicas=3,
        workers=1,
        clip_enabled=False,
        backoff_s=(5.0, 10.0, 20.0, 30.0, 60.0),
        max_deliver=8,
        repair_interval_s=5.0,
        repair_grace_s=20.0,
        log_format="json",
    )
    try:
        async with nats_cluster(data) as nodes:
            return await _ingest_with_leader_kill(nodes, settings, mongo.uri, files, data)
    finally:
        await mongo.stop()


async def _ingest_with_leader_kill(
    nodes: list[Node], settings: Settings, mongo_url: str, files: list[Path], data: Path
) -> dict[str, Any]:
    url = f"nats://127.0.0.1:{nodes[0].port}"  # the clients learn the other nodes from it
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    await _until_jetstream(nc, settings)
    catalog = await Catalog.open(mongo_url, settings.mongo_db)
    blobs = LocalBlobStore(settings.data_path / "blobs")
    publisher = EventPublisher(nc.jetstream())
    env = worker_env(settings, url, mongo_url)
    workers = [start_worker(env, [str(stage)], data / "workers.log") for stage in Stage]
    ids: list[str] = []
    killed = ""
    try:
        for i, path in enumerate(files):
            ref = await record_upload(blobs, catalog, path, publish=None)
            await _publish_acked(publisher, Uploaded(track=ref))
            ids.append(ref.track_id)
            if i == len(files) // 3:
                info = await nc.jetstream().stream_info(AUDIO_STREAM)
                assert info.cluster is not None
                killed = str(info.cluster.leader)
                victim = next(node for node in nodes if node.name == killed)
                await victim.kill()
            if i == 2 * len(files) // 3 and killed:
                await victim.start()
        settle_s = await _settle(nc, catalog, set(ids), timeout_s=900)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            await asyncio.to_thread(process.wait, 120)
    result = await _tally(nc, catalog, ids, settings)
    await catalog.close()
    await nc.close()
    return result | {"settle_s": settle_s, "killed_leader": killed}


async def _settle(nc: Client, catalog: Catalog, ids: set[str], timeout_s: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        indexed = await catalog.count_tracks(TENANT, status="indexed")
        if indexed >= len(ids):
            break
        await asyncio.sleep(2)
    return round(time.monotonic() - began, 1)


async def _tally(
    nc: Client, catalog: Catalog, ids: list[str], settings: Settings
) -> dict[str, Any]:
    indexed: dict[str, int] = {}
    for event in await audio_events(nc, "indexed"):
        if isinstance(event, Indexed):
            indexed[event.track.track_id] = indexed.get(event.track.track_id, 0) + 1
    vectors = await VectorIndex.open(settings)
    try:
        points = {i for i in ids if await vectors.get(TENANT, i) is not None}
    finally:
        await vectors.close()
    lost, duplicated, stuck = [], [], []
    for track_id in ids:
        documents = await catalog.count_tracks(TENANT, track_id=track_id)
        doc = await catalog.get_track(TENANT, track_id)
        if not indexed.get(track_id) or track_id not in points or documents == 0:
            lost.append(track_id)
        elif indexed[track_id] > 1 or documents > 1:
            duplicated.append(track_id)
        if doc is None or doc.get("status") != "indexed":
            stuck.append(track_id)
    return {
        "ingested": len(ids),
        "faults": 1,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stuck": len(stuck),
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "stuck": stuck[:5]},
    }
