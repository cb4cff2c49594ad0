"""ffmpeg as the fallback decoder for what libsndfile cannot read (AAC/M4A, ALAC, WMA, WebM…).

ffmpeg parses hostile containers, so it runs as a child process with a wall-clock timeout and an
address-space limit, never in the worker itself. It resamples and mixes to the analysis format
itself and streams raw float32 through a pipe, so memory stays flat however long the file is.
ffprobe, when present, supplies the source rate, channels and duration before decoding starts.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from typing import NamedTuple

import numpy as np

from handlers.decode.errors import DecodeError

MEMORY_LIMIT_BYTES = 2 << 30
_READ_BYTES = 1 << 18
_STDERR_TAIL_BYTES = 8192


class StreamInfo(NamedTuple):
    """What ffprobe reports for the first audio stream; 0 where it does not say."""

    sample_rate: int
    channels: int
    duration_s: float


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def _limit_memory(limit_bytes: int) -> Callable[[], None]:
    return functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _input(src_path: str) -> str:
    """An input URL ffmpeg cannot mistake for an option or a protocol (`-x.m4a`, `a:b.m4a`)."""
    return "file:" + os.path.abspath(src_path)


def _last_line(stderr: bytes) -> str:
    text = stderr.decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def ffprobe(
    src_path: str, *, timeout_s: float, memory_bytes: int = MEMORY_LIMIT_BYTES
) -> StreamInfo | None:
    """The first audio stream's parameters, or None when ffprobe is not installed."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    cmd = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=sample_rate,channels,duration:format=duration", "-of", "json",
           _input(src_path)]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=timeout_s, check=False,
            stdin=subprocess.DEVNULL, preexec_fn=_limit_memory(memory_bytes),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DecodeError(f"probing timed out after {timeout_s:g} s") from None
    if done.returncode != 0:
        raise DecodeError(f"unrecognised or corrupt audio data: {_last_line(done.stderr)}")
    report = json.loads(done.stdout or b"{}")
    streams = report.get("streams") or []
    if not streams:
        raise DecodeError("not audio: no audio stream found")
    stream = streams[0]
    duration = stream.get("duration") or report.get("format", {}).get("duration") or 0
    return StreamInfo(
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        duration_s=float(duration),
    )


def _child_output(
    proc: subprocess.Popen[bytes], deadline: float, timeout_s: float
) -> Iterator[tuple[bool, bytes]]:
    """(from stdout?, bytes) as the child writes them, until both pipes close or the deadline."""
    with selectors.DefaultSelector() as selector:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DecodeError(f"ffmpeg timed out after {timeout_s:g} s")
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, _READ_BYTES)
                if chunk:
                    yield key.fileobj is proc.stdout, chunk
                else:
                    selector.unregister(key.fileobj)


def ffmpeg_blocks(
    src_path: str,
    sample_rate: int,
    *,
    timeout_s: float,
    memory_bytes: int = MEMORY_LIMIT_BYTES,
) -> Generator[np.ndarray, None, None]:
    """Decode with ffmpeg to mono float32 at `sample_rate`, yielding blocks as they arrive.

    Raises DecodeError when ffmpeg is missing, exceeds `timeout_s`, exits non-zero (with its last
    stderr line as the reason) or produces no audio.
    """
    exe = ffmpeg_path()
    if exe is None:
        raise DecodeError("ffmpeg is not installed")
    cmd = [exe, "-v", "error", "-nostdin", "-i", _input(src_path), "-vn",
           "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"]  # fmt: skip
    deadline = time.monotonic() + timeout_s
    stderr_tail = pending = b""
    produced = 0
    # preexec_fn: the limit must be set in the child before ffmpeg runs; the worker that calls this
    # is a single-purpose pool process, and setrlimit neither imports nor takes locks.
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_limit_memory(memory_bytes),  # noqa: PLW1509
    ) as proc:  # fmt: skip
        try:
            for is_stdout, chunk in _child_output(proc, deadline, timeout_s):
                if not is_stdout:
                    stderr_tail = (stderr_tail + chunk)[-_STDERR_TAIL_BYTES:]
                    continue
                pending += chunk
                whole = len(pending) & ~3
                if whole:
                    produced += whole
                    yield np.frombuffer(pending[:whole], dtype="<f4")
                    pending = pending[whole:]
            returncode = proc.wait(max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            raise DecodeError(f"ffmpeg timed out after {timeout_s:g} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
    if returncode != 0:
        raise DecodeError(f"ffmpeg could not decode the file: {_last_line(stderr_tail)}")
    if produced == 0:
        raise DecodeError(f"ffmpeg decoded no audio: {_last_line(stderr_tail)}")
