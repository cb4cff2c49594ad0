"""The live view of an ingest on stderr: one overall bar, one bar per file in flight.

A file's bar has one step for its upload and, when the run waits, one per pipeline stage, moved
by the stage's percent events; its label names the current stage. Finished files leave their bar
and print one line above the bars. The view shows only on a terminal, so piped output and
`--json` stay clean.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cli.ingest import FAILED, INDEXED, IngestResult
from schemas.api import UploadAccepted
from schemas.events import Progress as StageProgress
from streams.names import Stage

STAGES = [str(stage) for stage in Stage]
_NAME_WIDTH = 32


def _label(path: Path) -> str:
    name = path.name
    if len(name) > _NAME_WIDTH:
        name = name[: _NAME_WIDTH - 1] + "…"
    return escape(name.ljust(_NAME_WIDTH))


class IngestView:
    """Implements cli.ingest.Observer with rich progress bars."""

    def __init__(self, total: int, *, wait: bool, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.wait = wait
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[stage]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self._overall = self._progress.add_task(
            f"[bold]{'files'.ljust(_NAME_WIDTH)}[/]", total=total, stage=f"0/{total}"
        )
        self._tasks: dict[Path, TaskID] = {}
        self._total = total
        self._counts: dict[str, int] = {}

    def __enter__(self) -> IngestView:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def started(self, path: Path) -> None:
        steps = 1 + len(STAGES) if self.wait else 1
        self._tasks[path] = self._progress.add_task(_label(path), total=steps, stage="hashing")

    def sent(self, path: Path, done: int, size: int) -> None:
        self._progress.update(
            self._tasks[path], completed=done / size if size else 0.0, stage="uploading"
        )

    def accepted(self, path: Path, answer: UploadAccepted) -> None:
        stage = "already uploaded" if answer.duplicate else "uploaded"
        self._progress.update(self._tasks[path], completed=1, stage=stage)

    def progressed(self, path: Path, event: StageProgress) -> None:
        if event.stage not in STAGES:
            return
        step = 1 + STAGES.index(event.stage)
        if event.state == "finished":
            done, stage = step + 1.0, f"{event.stage} done"
        elif event.state == "failed":
            done, stage = step, f"[red]{event.stage} failed"
        else:
            done, stage = step + event.percent / 100, str(event.stage)
        self._progress.update(self._tasks[path], completed=done, stage=stage)

    def finished(self, path: Path, result: IngestResult) -> None:
        self._progress.remove_task(self._tasks.pop(path))
        self._counts[result.status] = self._counts.get(result.status, 0) + 1
        done = sum(self._counts.values())
        counts = (f"{count} {status}" for status, count in sorted(self._counts.items()))
        self._progress.update(
            self._overall, advance=1, stage=" · ".join([f"{done}/{self._total}", *counts])
        )
        if self._progress.disable:
            return
        if result.status == FAILED:
            mark = f"[red]✗[/] {escape(str(path))}: {escape(result.reason or 'failed')}"
        else:
            note = " (already uploaded)" if result.duplicate else ""
            colour = "green" if result.status == INDEXED else "cyan"
            mark = f"[{colour}]✓[/] {escape(str(path))} {result.status}{note}"
        self._progress.console.print(mark, highlight=False)
