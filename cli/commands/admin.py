"""`replay` and `status`: the operator's view of the pipeline (admin endpoints)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from cli import render
from cli.client import Gateway
from cli.commands.common import Commands, client, client_options
from schemas.api import ReplayRequest
from streams.names import Stage

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since(text: str) -> str:
    """An argparse type: ISO 8601 (local time unless it has an offset), or an age like `2h`."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        moment = datetime.now(UTC) - timedelta(seconds=float(ago[1]) * _UNIT_S[ago[2]])
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a time: {text!r} (ISO 8601 like 2025-06-01T12:00, or an age like 30m, 2h, 7d)"
            ) from None
    return moment.astimezone(UTC).isoformat()


async def _replay(gateway: Gateway, args: argparse.Namespace) -> int:
    result = await gateway.replay(ReplayRequest(stage=args.stage, since=args.since))
    if args.json:
        render.json_line(result)
    else:
        print(
            f"replaying {result.stage} from sequence {result.from_sequence}: "
            f"{result.pending} message{'s' if result.pending != 1 else ''} to process"
        )
    return 0


async def _status(gateway: Gateway, args: argparse.Namespace) -> int:
    state = await gateway.status()
    if args.json:
        render.json_line(state)
    else:
        render.system_status(render.stdout(), state)
    return 0


def register(commands: Commands) -> None:
    options = client_options()
    replay = commands.add_parser(
        "replay",
        parents=[options],
        help="re-run a stage from the event log (admin)",
        description="Rewind a stage's consumer: it processes its input events again, "
        "from the start of the log or from --since.",
    )
    replay.add_argument("--stage", required=True, choices=[str(stage) for stage in Stage])
    replay.add_argument("--since", type=since, metavar="TIME", help="ISO 8601 time or age (2h)")
    replay.set_defaults(run=client(_replay))

    status = commands.add_parser(
        "status", parents=[options], help="pipeline backlog per stage and tracks by status (admin)"
    )
    status.set_defaults(run=client(_status))
