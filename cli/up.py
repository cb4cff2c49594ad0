"""`tonestream up`: the whole system on its embedded default, in one process plus its children.

nats-server (JetStream under the data dir), the Mongo-protocol catalog server, Qdrant local mode,
the blob folder and every pipeline stage with a worker pool sized to the cores. Ctrl-C / SIGTERM
stops the stages first (in-flight messages finish or stay unacked for redelivery), then the
servers; starting again resumes from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from handlers.worker import Worker
from schemas.settings import Settings
from stores.embedded_mongo import start_embedded_mongo
from streams.names import Stage
from streams.server import EmbeddedNats


def _prepare(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    return data.resolve()


@contextlib.asynccontextmanager
async def running_system(settings: Settings) -> AsyncIterator[Worker]:
    """Embedded servers (unless URLs are configured) and every stage; stopped in reverse."""
    data = await asyncio.to_thread(_prepare, Path(settings.data_dir))
    settings = msgspec.structs.replace(settings, data_dir=str(data))
    async with contextlib.AsyncExitStack() as stack:
        nats_url, mongo_url = settings.nats_url, settings.mongo_url
        if not nats_url:
            nats_server = await EmbeddedNats.start(data / "nats")
            stack.push_async_callback(nats_server.stop)
            nats_url = nats_server.url
        if not mongo_url:
            mongo = await start_embedded_mongo(data / "mongo")
            stack.push_async_callback(mongo.stop)
            mongo_url = mongo.uri
        worker = Worker(settings, list(Stage), nats_url, mongo_url)
        stack.push_async_callback(worker.stop)
        await worker.start()
        yield worker


async def run_up(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_system(settings) as worker:
        print(f"Tonestream is running: stages {', '.join(Stage)}; {settings.worker_count} workers")
        print(f"  NATS  {worker.nats_url}")
        print(f"  data  {worker.settings.data_dir}")
        print("Press Ctrl-C (or send SIGTERM) to stop.", flush=True)
        await stop.wait()
        print("stopping…", flush=True)
