"""`tonestream gateway`: only the HTTP gateway, against external NATS, MongoDB, Qdrant and S3
(the K3s shape: stages run as `tonestream worker STAGE` elsewhere)."""

from __future__ import annotations

import asyncio
import signal

from cli.serve import serving
from cli.up import gateway_url
from gateway.app import create_app
from gateway.services import Services
from schemas.settings import Settings


async def run_gateway(settings: Settings) -> None:
    missing = [
        name
        for name, value in (
            ("TONESTREAM_NATS_URL", settings.nats_url),
            ("TONESTREAM_MONGO_URL", settings.mongo_url),
        )
        if not value
    ]
    if missing:
        raise SystemExit(
            f"tonestream gateway needs {' and '.join(missing)} (or use `tonestream up`)"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(
        settings, lambda: Services.open(settings, settings.nats_url, settings.mongo_url)
    )
    async with serving(app, settings.host, settings.port):
        print(f"Tonestream gateway is running at {gateway_url(settings)}", flush=True)
        await stop.wait()
