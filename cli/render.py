"""What the commands print: `--json` lines for programs, rich tables for people.

`--json` writes the API's own Structs (or the command's result Structs) with msgspec, one
document per line, so the output is exactly the HTTP API's shape. The tables pick the columns a
person scans for; everything else is a `--json` away.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.analyze import Analysis, AnalysisFailure
from cli.ingest import FAILED, IngestResult
from schemas.api import SearchResults, SystemStatus, Track, TrackSummary
from streams.names import Stage

_encoder = msgspec.json.Encoder()


def json_line(value: Any) -> None:
    """One JSON document on its own line of stdout."""
    sys.stdout.write(_encoder.encode(value).decode() + "\n")
    sys.stdout.flush()


def stdout() -> Console:
    """The console for results; piped, its lines are never wrapped, so each row stays greppable."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 1_000
    return console


# -- formatting --------------------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def bpm(value: float | None) -> str:
    return "–" if not value else f"{value:.1f}"


def key(tonic: str | None, mode: str | None) -> str:
    return "–" if tonic is None else f"{tonic} {mode or ''}".strip()


def size(nbytes: int) -> str:
    if nbytes < 1000:
        return f"{nbytes} B"
    value = nbytes / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def status(value: str, reason: str | None = None) -> str:
    if value == FAILED:
        return f"[red]failed[/]: {escape(reason)}" if reason else "[red]failed[/]"
    if value == "indexed":
        return "[green]indexed[/]"
    return escape(value)


def _words(values: Iterable[str]) -> str:
    return escape(", ".join(values)) or "–"


# -- tracks ------------------------------------------------------------------------------------
def track_table(tracks: Sequence[TrackSummary], scores: Sequence[float] | None = None) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, style="dim")
    if scores is not None:
        table.add_column("score", justify="right")
    tagged = any(track.title or track.artist for track in tracks)
    for name in ("file", "status", *(["artist – title"] if tagged else [])):
        table.add_column(name, overflow="fold")
    for name in ("length", "bpm"):
        table.add_column(name, justify="right")
    for name in ("key", "mood", "genre"):
        table.add_column(name)
    for index, track in enumerate(tracks):
        score = [f"{scores[index]:.3f}"] if scores is not None else []
        table.add_row(
            track.track_id,
            *score,
            escape(track.filename),
            status(track.status, track.failure_reason),
            *(
                [escape(" – ".join(filter(None, (track.artist, track.title))) or "–")]
                if tagged
                else []
            ),
            duration(track.duration_s),
            bpm(track.tempo_bpm),
            key(track.key, track.mode),
            _words(track.mood),
            _words(track.genre),
        )
    return table


def search_results(console: Console, results: SearchResults) -> None:
    hits = results.results
    console.print(
        track_table([hit.track for hit in hits], [hit.score for hit in hits])
        if hits
        else "no matches"
    )
    for note in results.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _number(features: dict[str, Any], name: str, unit: str, digits: int = 1) -> str:
    value = features.get(name)
    return "–" if value is None else f"{value:.{digits}f} {unit}".strip()


def _file_tags(grid: Table, tags: dict[str, Any]) -> None:
    """The file's own tags and encoding, as `show` lists them (only what the file states)."""
    for name in ("title", "artist", "album", "album_artist", "genre"):
        if tags.get(name):
            label = "album artist" if name == "album_artist" else name
            grid.add_row(label if name != "genre" else "file genre", escape(str(tags[name])))
    position = [
        f"{label} {tags[field]}" + (f"/{tags[total]}" if total and tags.get(total) else "")
        for label, field, total in (
            ("track", "track_number", "track_total"),
            ("disc", "disc_number", None),
        )
        if tags.get(field)
    ]
    if tags.get("year"):
        position.append(str(tags["year"]))
    if position:
        grid.add_row("position", ", ".join(position))
    if tags.get("codec"):
        rate = f", {tags['bit_rate'] / 1000:.0f} kb/s" if tags.get("bit_rate") else ""
        grid.add_row("codec", escape(str(tags["codec"])) + rate)


MODEL_TAGS_SHOWN = 8


def top_model_tags(scores: dict[str, Any], n: int = MODEL_TAGS_SHOWN) -> list[tuple[str, float]]:
    """The `n` most probable of both models' tags (a tag both models know: the higher)."""
    merged: dict[str, float] = {}
    for model in ("msd", "mtt"):
        for tag, probability in (scores.get(model) or {}).items():
            name = str(tag).lower()
            merged[name] = max(merged.get(name, 0.0), float(probability))
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:n]


def track_details(console: Console, track: Track) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("track", track.track_id)
    grid.add_row("file", escape(track.filename))
    grid.add_row("status", status(track.status, track.failure_reason))
    if track.failed_stage:
        grid.add_row("failed in", track.failed_stage)
    grid.add_row("size", f"{size(track.size_bytes)}, {escape(track.content_type)}")
    grid.add_row("sha256", track.sha256)
    _file_tags(grid, (track.audio or {}).get("metadata") or {})
    features = track.features or {}
    if features:
        grid.add_row("duration", duration(features.get("duration_s")))
        confidence = _number(features, "tempo_confidence", "", 2)
        grid.add_row("tempo", f"{bpm(features.get('tempo_bpm'))} BPM (confidence {confidence})")
        confidence = _number(features, "key_confidence", "", 2)
        grid.add_row(
            "key",
            f"{key(features.get('key'), features.get('mode'))} (confidence {confidence})",
        )
        grid.add_row(
            "loudness",
            f"{_number(features, 'loudness_lufs', 'LUFS')}, "
            f"range {_number(features, 'loudness_range_lu', 'LU')}, "
            f"true peak {_number(features, 'true_peak_dbtp', 'dBTP')}, "
            f"sample peak {_number(features, 'sample_peak_dbfs', 'dBFS')}",
        )
        grid.add_row("ReplayGain", f"{_number(features, 'replaygain_db', 'dB')} (track gain)")
    tags = track.tags or {}
    for name in ("mood", "genre", "instruments", "vocals"):
        if tags.get(name):
            grid.add_row(name, _words(tags[name]))
    top = top_model_tags(tags.get("scores") or {})
    if top:
        grid.add_row("model tags", ", ".join(f"{escape(tag)} {p:.2f}" for tag, p in top))
    if tags.get("description"):
        grid.add_row("description", escape(str(tags["description"])))
    for stage in Stage:
        state = track.stages.get(stage)
        if state is not None:
            text = state.state + (f": {state.message}" if state.message else "")
            grid.add_row(f"  {stage}", escape(text))
    console.print(grid)


# -- operations --------------------------------------------------------------------------------
def system_status(console: Console, state: SystemStatus) -> None:
    table = Table(box=None, pad_edge=False)
    table.add_column("stage")
    for name in ("pending", "in flight", "redelivered", "failed", "lag"):
        table.add_column(name, justify="right")
    for stage in state.stages:
        table.add_row(
            stage.stage,
            str(stage.pending),
            str(stage.in_flight),
            str(stage.redelivered),
            str(stage.failed),
            str(stage.lag),
        )
    console.print(table)
    counts = sorted(state.tracks_by_status.items())
    console.print("tracks: " + (", ".join(f"{count} {name}" for name, count in counts) or "none"))


# -- files -------------------------------------------------------------------------------------
def ingest_summary(console: Console, results: Sequence[IngestResult]) -> None:
    failed = [result for result in results if result.status == FAILED]
    if failed:
        table = Table(box=None, pad_edge=False, title="failed", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for result in failed:
            table.add_row(escape(result.path), escape(result.reason or ""))
        console.print(table)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    duplicates = sum(result.duplicate for result in results)
    parts = [f"{count} {name}" for name, count in sorted(counts.items())]
    if duplicates:
        parts.append(f"{duplicates} already uploaded")
    noun = "file" if len(results) == 1 else "files"
    console.print(f"{len(results)} {noun}: " + ", ".join(parts))


def analyses(console: Console, results: Sequence[Analysis | AnalysisFailure]) -> None:
    """A table of the measured files, then one line per file that could not be analysed."""
    table = Table(box=None, pad_edge=False)
    table.add_column("file", overflow="fold")
    for name in ("length", "bpm", "key", "LUFS", "dBTP", "gain", "format"):
        table.add_column(name, justify="left" if name in ("key", "format") else "right")
    failures = [result for result in results if isinstance(result, AnalysisFailure)]
    for result in results:
        if isinstance(result, AnalysisFailure):
            continue
        table.add_row(
            escape(result.file),
            duration(result.duration_s),
            bpm(result.tempo_bpm),
            key(result.key, result.mode),
            f"{result.loudness_lufs:.1f}",
            f"{result.true_peak_dbtp:+.1f}",
            f"{result.replaygain_db:+.1f}",
            f"{result.source_format} {result.source_sample_rate / 1000:g} kHz",
        )
    if table.row_count:
        console.print(table)
    for failure in failures:
        console.print(f"[red]✗[/] {escape(failure.file)}: {escape(failure.error)}")
