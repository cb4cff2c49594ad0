"""`analyze`: tempo, key and loudness of local files, offline — no gateway, no services.

Files are measured in the pipeline's worker pool (one process per core, with its memory and
time limits) by cli.analyze; results print in the order given, each as soon as it and those
before it are done.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from concurrent.futures.process import BrokenProcessPool

from cli import files, render
from cli.analyze import Analysis, AnalysisFailure, analyse_path
from cli.commands.common import Commands
from cli.errors import CliError
from handlers.decode.errors import DecodeError
from handlers.errors import PermanentError
from handlers.pool import WorkerPool
from schemas.settings import Settings

Result = Analysis | AnalysisFailure


async def _one(pool: WorkerPool, file: str, settings: Settings) -> Result:
    measure = functools.partial(
        analyse_path,
        target_rate=settings.analysis_sample_rate,
        max_duration_s=settings.max_duration_s,
        timeout_s=settings.decode_timeout_s,
    )
    try:
        return await pool.run(measure, file, timeout_s=settings.decode_timeout_s + 60)
    except (DecodeError, PermanentError) as exc:
        error = exc.reason
    except OSError as exc:
        error = exc.strerror or str(exc)
    except ValueError as exc:
        error = str(exc)
    except BrokenProcessPool:
        error = "the analysis process died"
    return AnalysisFailure(file=file, error=error)


async def _analyse_all(names: list[str], settings: Settings, as_json: bool) -> list[Result]:
    pool = WorkerPool(min(len(names), settings.worker_count), settings.worker_memory_mb)
    try:
        tasks = [asyncio.create_task(_one(pool, name, settings)) for name in names]
        results = []
        for task in tasks:
            result = await task
            if as_json:
                render.json_line(result)
            results.append(result)
        return results
    finally:
        await pool.close()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    names = [str(path) for path in files.collect(args.paths)]
    if not names:
        raise CliError(f"no audio files in {', '.join(args.paths)}")
    results = asyncio.run(_analyse_all(names, settings, args.json))
    if not args.json:
        render.analyses(render.stdout(), results)
    return 1 if any(isinstance(result, AnalysisFailure) for result in results) else 0


def register(commands: Commands) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="measure local files offline (tempo, key, loudness)",
        description="Decode and measure files with the pipeline's own code, without a server. "
        "The exit code is 1 if any file could not be analysed.",
    )
    analyze.add_argument("paths", nargs="+", metavar="FILE", help="a file or a folder")
    analyze.add_argument("--json", action="store_true", help="one JSON object per file")
    analyze.set_defaults(run=_run)
