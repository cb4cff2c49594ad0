"""`tonestream up`: the whole system on its embedded default, in one process plus its children.

nats-server (JetStream under the data dir), the Mongo-protocol catalog server, Qdrant Edge (in
its owning process), the blob folder, every pipeline stage with a worker pool sized to the cores,
and the gateway (uvicorn in this event loop, see cli/serve.py).
First start creates a local admin and API key (data dir, 0600) for the CLI. Ctrl-C / SIGTERM
stops the gateway first, then the stages (in-flight messages finish or stay unacked for
redelivery), then the servers; starting again resumes from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from cli.credentials import LocalCredentials, credentials_path, ensure_local_admin
from cli.serve import serving
from gateway.app import create_app
from gateway.services import Services
from handlers.worker import Worker
from schemas.settings import Settings
from stores.accounts import Accounts
from stores.embedded_mongo import start_embedded_mongo
from streams.names import Stage
from streams.server import EmbeddedNats


def _prepare(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    return data.resolve()


def gateway_url(settings: Settings) -> str:
    return settings.public_url or f"http://{settings.host}:{settings.port}"


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


@contextlib.asynccontextmanager
async def running_gateway(worker: Worker) -> AsyncIterator[str]:
    """The gateway on the worker's connections (each Edge shard has one owner); yields its URL."""
    settings = worker.settings

    def open_services() -> contextlib.AbstractAsyncContextManager[Services]:
        return Services.open(
            settings,
            worker.nats_url,
            worker.mongo_url,
            catalog=worker.catalog,
            vectors=worker.vectors,
        )

    async with serving(create_app(settings, open_services), settings.host, settings.port):
        yield gateway_url(settings)


async def run_up(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_system(settings) as worker:
        assert worker.catalog is not None  # the indexing stage opened it
        data = Path(worker.settings.data_dir)
        # before the port opens: whoever sees /health or /ready can read the credentials too
        accounts = Accounts(worker.catalog.db, settings)
        admin = await ensure_local_admin(accounts, data, gateway_url(settings))
        async with running_gateway(worker) as url:
            await _serve_until(stop, url, admin, worker)


async def _serve_until(
    stop: asyncio.Event, url: str, admin: LocalCredentials, worker: Worker
) -> None:
    """Print the banner, then run until Ctrl-C or SIGTERM."""
    settings = worker.settings
    data = Path(settings.data_dir)
    print(f"Tonestream is running at {url}  (web app: {url}/, API docs: {url}/schema)")
    print(f"  stages   {', '.join(Stage)} — {settings.worker_count} workers")
    print(f"  data     {data}")
    print(
        f"  admin    {admin.username}; password (`tonestream password`) and API key in "
        f"{credentials_path(data)} (mode 0600)"
    )
    print(f"  NATS     {worker.nats_url}")
    print("Press Ctrl-C (or send SIGTERM) to stop.", flush=True)
    await stop.wait()
    print("stopping…", flush=True)
