"""Which files a command works on: the paths given, and the audio files under any folder given.

`ingest` and `analyze` take files and folders alike. A file named on the command line is taken
whatever its name (the server and the decoder sniff the content anyway); inside folders only
names with an audio extension count, so a music library's cover art and cue sheets are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {
        ".aac", ".aif", ".aifc", ".aiff", ".alac", ".au", ".caf", ".flac", ".m4a", ".mka",
        ".mp2", ".mp3", ".mp4", ".oga", ".ogg", ".opus", ".snd", ".w64", ".wav", ".wave",
        ".webm", ".wma",
    }
)  # fmt: skip


def _audio_under(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def collect(paths: Iterable[str]) -> list[Path]:
    """Files in command-line order, folders expanded (sorted, hidden entries skipped), each once.

    A path that does not exist is kept, so the command reports it like any other failed file.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        for file in _audio_under(path) if path.is_dir() else [path]:
            found.setdefault(file, None)
    return list(found)
