"""`up`, `gateway`, `worker`: the commands that run Tonestream rather than call it; and
`password`, which shows the local admin's sign-in that `up` saved (for the web app)."""

from __future__ import annotations

import argparse
import asyncio
import signal

import msgspec

from cli.commands.common import Commands, at_least
from cli.errors import CliError
from schemas.settings import Settings
from streams.names import Stage


def _listen_on(args: argparse.Namespace, settings: Settings) -> Settings:
    """`settings` with the --host/--port given (the environment's otherwise)."""
    changes = {name: getattr(args, name) for name in ("host", "port") if getattr(args, name)}
    return msgspec.structs.replace(settings, **changes)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from cli.up import run_up

    settings = _listen_on(args, settings)
    if args.data:
        settings = msgspec.structs.replace(settings, data_dir=args.data)
    asyncio.run(run_up(settings))
    return 0


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from cli.gateway import run_gateway

    asyncio.run(run_gateway(_listen_on(args, settings)))
    return 0


async def _run_worker(settings: Settings, stages: list[Stage]) -> None:
    from handlers.worker import Worker

    if not settings.nats_url:
        raise CliError("a worker needs TONESTREAM_NATS_URL (or use `tonestream up`)")
    if {Stage.INDEXING, Stage.FINGERPRINT} & set(stages) and not settings.mongo_url:
        raise CliError("indexing and fingerprint need TONESTREAM_MONGO_URL (or `tonestream up`)")
    worker = Worker(settings, stages, settings.nats_url, settings.mongo_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.start()
        await stop.wait()
    finally:
        await worker.stop()


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    stages = list(Stage) if "all" in args.stages else [Stage(name) for name in args.stages]
    asyncio.run(_run_worker(settings, stages))
    return 0


def _password(args: argparse.Namespace, settings: Settings) -> int:
    from cli.credentials import credentials_path, load_credentials

    saved = load_credentials(settings.data_path)
    if saved is None:
        where = credentials_path(settings.data_path)
        raise CliError(f"no saved credentials in {where}: run `tonestream up` first")
    print(f"user      {saved.username}")
    print(f"password  {saved.password}")
    print(f"sign in   {saved.url}/")
    return 0


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help="address to listen on (default $TONESTREAM_HOST or 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=at_least(1), help="port to listen on (default $TONESTREAM_PORT or 8000)"
    )


def register(commands: Commands) -> None:
    up = commands.add_parser(
        "up", help="run the whole system on its embedded default (servers, stages, gateway)"
    )
    up.add_argument("--data", help="data directory (default ./var, or TONESTREAM_DATA_DIR)")
    _add_listen(up)
    up.set_defaults(run=_up)

    gateway = commands.add_parser(
        "gateway", help="run only the HTTP gateway, against external services"
    )
    _add_listen(gateway)
    gateway.set_defaults(run=_gateway)

    worker = commands.add_parser("worker", help="run pipeline stages against external services")
    worker.add_argument(
        "stages",
        nargs="+",
        choices=[*(str(stage) for stage in Stage), "all"],
        metavar="STAGE",
        help="decode, features, tagging, embedding, indexing, fingerprint, or all",
    )
    worker.set_defaults(run=_worker)

    password = commands.add_parser(
        "password",
        help="show the local admin's user name and password `up` saved (to sign in on the web)",
    )
    password.set_defaults(run=_password)
