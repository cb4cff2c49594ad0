"""`tonestream` entry point: argument parsing and dispatch, one readable line per error."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import msgspec

from cli.logs import configure_logging
from schemas.settings import get_settings
from streams.names import Stage


def _stages(names: list[str]) -> list[Stage]:
    if names == ["all"]:
        return list(Stage)
    return [Stage(name) for name in names]


async def _run_worker(stages: list[Stage]) -> None:
    from handlers.worker import Worker

    settings = get_settings()
    if not settings.nats_url:
        raise SystemExit("tonestream worker needs TONESTREAM_NATS_URL (or use `tonestream up`)")
    if Stage.INDEXING in stages and not settings.mongo_url:
        raise SystemExit("the indexing stage needs TONESTREAM_MONGO_URL (or use `tonestream up`)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tonestream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system on its embedded default")
    up.add_argument("--data", help="data directory (default ./var, or TONESTREAM_DATA_DIR)")
    worker = commands.add_parser("worker", help="run pipeline stages against external services")
    worker.add_argument(
        "stages",
        nargs="+",
        choices=[*(s.value for s in Stage), "all"],
        metavar="STAGE",
        help="decode, features, tagging, embedding, indexing, or all",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    try:
        if args.command == "worker":
            asyncio.run(_run_worker(_stages(args.stages)))
        elif args.command == "up":
            from cli.up import run_up

            if args.data:
                settings = msgspec.structs.replace(settings, data_dir=args.data)
            asyncio.run(run_up(settings))
    except KeyboardInterrupt:
        pass
    except (OSError, RuntimeError) as exc:
        print(f"tonestream: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
