"""Opening an upload with FFmpeg's demuxers (PyAV), shared by the gateway and the decode stage.

The gateway opens every upload once before accepting it, so a file whose container FFmpeg cannot
parse, or that holds no audio stream, is refused at once with a reason instead of failing later in
the pipeline; the decode stage opens it the same way before decoding. Only local files are read:
a container that names other URLs (playlists, references) may not pull them in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av
import av.container

from stores.sniff import NotAudioError

_OPEN_OPTIONS = {"protocol_whitelist": "file"}
_HEADER_FORMATS = frozenset({"WAV", "AIFF"})
"""Formats whose header describes the stream fully: FFmpeg need not read its default 5 MB probe
(a tenth of a WAV's whole decoding time) to find the stream's parameters."""
_HEADER_PROBE_BYTES = "65536"


def ffmpeg_message(exc: BaseException) -> str:
    """FFmpeg's own words for an error, lower-cased, without the trailing full stop."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".").lower()


@contextlib.contextmanager
def open_audio(
    path: str, fmt: str | None
) -> Iterator[tuple[av.container.InputContainer, av.AudioStream]]:
    """The opened container and its first audio stream; NotAudioError with the reason if not."""
    what = f"{fmt} data" if fmt else "audio data"
    try:
        options = _OPEN_OPTIONS
        if fmt in _HEADER_FORMATS:
            options = options | {"probesize": _HEADER_PROBE_BYTES}
        container = av.open(path, options=options, metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise NotAudioError(f"unrecognised or corrupt {what} ({ffmpeg_message(exc)})") from None
    with container:
        if not container.streams.audio:
            raise NotAudioError("not audio: no audio stream found")
        yield container, container.streams.audio[0]
