"""`tonestream up`: the whole system on its embedded default, in one process plus its children.

nats-server (JetStream under the data dir), the Mongo-protocol catalog server, Qdrant local mode,
the blob folder and every pipeline stage with a worker pool sized to the cores. Ctrl-C / SIGTERM
stops the stages first (in-flight messages finish or stay unacked for redelivery), then the
servers; starting again resumes from the log.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from handlers.worker import Worker
from schemas.settings import Settings
from stores.embedded_mongo import start_embedded_mongo
from streams.names import Stage
from streams.server import EmbeddedNats

log = structlog.get_logger("up")


def _prepare(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    return data.resolve()


async def run_up(settings: Settings) -> None:
    data = await asyncio.to_thread(_prepare, Path(settings.data_dir))
    nats_server = None if settings.nats_url else await EmbeddedNats.start(data / "nats")
    mongo = None if settings.mongo_url else await start_embedded_mongo(data / "mongo")
    worker = Worker(
        settings,
        list(Stage),
        settings.nats_url or (nats_server.url if nats_server else ""),
        settings.mongo_url or (mongo.uri if mongo else ""),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.start()
        print(f"Tonestream is running: stages {', '.join(Stage)}; {settings.worker_count} workers")
        print(f"  NATS  {worker.nats_url}")
        print(f"  data  {data}")
        print("Press Ctrl-C (or send SIGTERM) to stop.", flush=True)
        await stop.wait()
        print("stopping…", flush=True)
    finally:
        await worker.stop()
        if mongo:
            await mongo.stop()
        if nats_server:
            await nats_server.stop()
