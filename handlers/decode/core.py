"""Decode-stage core: any accepted upload becomes the one analysis audio file later stages read.

Pure apart from the two paths it is given, so the handler can run it in a process-pool worker.
The upload is sniffed (never trusting its name), probed (refusing absurd headers and over-long
files before any decoding), then decoded in blocks — libsndfile first, ffmpeg in a sandboxed child
process for the rest — mixed to mono, resampled with a streaming soxr resampler and written as
mono FLAC PCM_16 at the analysis rate. Memory stays flat however long the upload is. Everything
permanent (not audio, corrupt, truncated, too long) raises DecodeError with a readable reason.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import msgspec
import numpy as np
import soundfile as sf
import soxr

from handlers.decode.errors import DecodeError
from handlers.decode.ffmpeg import ffmpeg_blocks, ffmpeg_path, ffprobe
from schemas.payloads import DecodedAudio
from stores.sniff import HEAD_BYTES, NotAudioError, check_head, wav_header

__all__ = [
    "DecodeError",
    "DecodeResult",
    "ProbeInfo",
    "decode_to_analysis",
    "probe",
    "read_analysis",
]

MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
BLOCK_FRAMES = 65_536
COMPLETE_FRACTION = 0.98
"""Fewer decoded frames than this share of what the header promises means a truncated file."""
PEAK_HOP = 32
"""Analysis samples per stored peak; the display peaks are maxima over runs of these."""
_RESAMPLE_QUALITY = "MQ"  # aliasing is irrelevant for analysis; HQ costs the same here, LQ no less
_FLAC_COMPRESSION = 0.0  # fastest level; the analysis file is transient and already small
_SNDFILE_FORMATS = frozenset(
    {"WAV", "W64", "AIFF", "AU", "CAF", "SVX", "FLAC", "OGG", "OPUS", "MP3"}
)
_ESTIMATED_LENGTH = frozenset({"MP3"})  # libsndfile estimates MPEG lengths from the bitrate


class ProbeInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What the upload's header says; 0 means unknown (ffmpeg path without ffprobe)."""

    format: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    decoder: Literal["libsndfile", "ffmpeg"]


class DecodeResult(msgspec.Struct, kw_only=True, frozen=True):
    """DecodedAudio minus the blob key, which the caller assigns when it uploads the file."""

    sample_rate: int
    duration_s: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    peaks: list[float]

    def to_payload(self, analysis_key: str) -> DecodedAudio:
        return DecodedAudio(analysis_key=analysis_key, **msgspec.structs.asdict(self))


def _human_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _check_rate(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise DecodeError(
            f"absurd header: sample rate {sample_rate} Hz is outside "
            f"{MIN_SAMPLE_RATE // 1000}–{MAX_SAMPLE_RATE // 1000} kHz"
        )


def _check_channels(channels: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise DecodeError(f"absurd header: {channels} channels (1–{MAX_CHANNELS} supported)")


def _check_duration(duration_s: float, max_duration_s: float) -> None:
    if duration_s > max_duration_s:
        raise DecodeError(
            f"too long: {_human_duration(duration_s)} exceeds "
            f"the {_human_duration(max_duration_s)} limit"
        )


def _read_head(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(HEAD_BYTES)


def _probe_ffmpeg(path: str, fmt: str | None, max_duration_s: float, timeout_s: float) -> ProbeInfo:
    """Probe what libsndfile could not open; only ffmpeg (and ffprobe) may still read it."""
    if ffmpeg_path() is None:
        if fmt is None or fmt in _SNDFILE_FORMATS:
            what = f"{fmt} data" if fmt else "audio data"
            raise DecodeError(
                f"unrecognised or corrupt {what} "
                "(libsndfile cannot read it; other formats are unsupported without ffmpeg, "
                "which is not installed)"
            )
        raise DecodeError(
            f"unsupported format without ffmpeg: {fmt} needs ffmpeg, which is not installed"
        )
    stream = ffprobe(path, timeout_s=timeout_s)
    if stream is None:
        return ProbeInfo(
            format=fmt or "unknown", sample_rate=0, channels=0, frames=0, duration_s=0.0,
            decoder="ffmpeg",
        )  # fmt: skip
    if stream.sample_rate:
        _check_rate(stream.sample_rate)
    if stream.channels:
        _check_channels(stream.channels)
    _check_duration(stream.duration_s, max_duration_s)
    return ProbeInfo(
        format=fmt or "unknown",
        sample_rate=stream.sample_rate,
        channels=stream.channels,
        frames=round(stream.duration_s * stream.sample_rate),
        duration_s=stream.duration_s,
        decoder="ffmpeg",
    )


def _probe(path: str, head: bytes, max_duration_s: float, timeout_s: float) -> ProbeInfo:
    try:
        fmt = check_head(head)
    except NotAudioError as exc:
        raise DecodeError(exc.reason) from None
    wav = wav_header(head)
    if wav is not None:  # libsndfile rejects some of these with cryptic messages
        _check_rate(wav.sample_rate)
        _check_channels(wav.channels)
    try:
        info = sf.info(path)
    except sf.LibsndfileError:
        return _probe_ffmpeg(path, fmt, max_duration_s, timeout_s)
    _check_rate(info.samplerate)
    _check_channels(info.channels)
    # libsndfile quietly shortens a truncated WAV to what is there; its header says otherwise
    promised = wav.promised_frames if wav is not None else None
    frames = max(info.frames, promised or 0)
    duration_s = frames / info.samplerate
    _check_duration(duration_s, max_duration_s)
    return ProbeInfo(
        format=fmt or info.format,
        sample_rate=info.samplerate,
        channels=info.channels,
        frames=frames,
        duration_s=duration_s,
        decoder="libsndfile",
    )


def probe(path: str, *, max_duration_s: float = 3600.0, timeout_s: float = 300.0) -> ProbeInfo:
    """Sniff and probe `path` without decoding it; DecodeError for non-audio or absurd headers."""
    return _probe(path, _read_head(path), max_duration_s, timeout_s)


class _PeakMeter:
    """Running max |x| per hop of the (clipped) analysis signal, reduced to display peaks."""

    def __init__(self) -> None:
        self._hops: list[np.ndarray] = []
        self._carry = np.empty(0, dtype=np.float32)

    def add(self, samples: np.ndarray) -> None:
        if self._carry.size:
            samples = np.concatenate((self._carry, samples))
        whole = len(samples) - len(samples) % PEAK_HOP
        if whole:
            self._hops.append(np.abs(samples[:whole]).reshape(-1, PEAK_HOP).max(axis=1))
        self._carry = samples[whole:].copy()

    def peaks(self, count: int) -> list[float]:
        """`count` maxima over equal runs of hops (hops repeat when there are fewer than count)."""
        tail = [np.abs(self._carry).max(keepdims=True)] if self._carry.size else []
        hops = np.concatenate([*self._hops, *tail]) if self._hops or tail else np.zeros(1)
        starts = np.arange(count) * len(hops) // count
        reduced = np.maximum.reduceat(hops, starts) if count else hops[:0]
        return [round(float(x), 4) for x in reduced]


class _AnalysisWriter:
    """Resamples mono blocks to the analysis rate, writes FLAC PCM_16 and meters the peaks."""

    def __init__(self, path: str, in_rate: int, out_rate: int, max_duration_s: float) -> None:
        self._max_duration_s = max_duration_s
        self._max_samples = math.ceil(max_duration_s * out_rate) + 16  # resampler rounding
        self._resampler = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(
                in_rate, out_rate, 1, dtype="float32", quality=_RESAMPLE_QUALITY
            )
        )
        self._meter = _PeakMeter()
        self._file = sf.SoundFile(
            path, "w", out_rate, 1, subtype="PCM_16", format="FLAC",
            compression_level=_FLAC_COMPRESSION,
        )  # fmt: skip
        self.samples = 0

    def __enter__(self) -> _AnalysisWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    def write(self, mono: np.ndarray, *, last: bool = False) -> None:
        out = mono if self._resampler is None else self._resampler.resample_chunk(mono, last=last)
        if not len(out):
            return
        self.samples += len(out)
        if self.samples > self._max_samples:
            limit = _human_duration(self._max_duration_s)
            raise DecodeError(f"too long: exceeds the {limit} limit")
        clean = np.nan_to_num(np.clip(out, -1.0, 1.0), copy=False)  # NaN (corrupt float data) → 0
        self._meter.add(clean)
        self._file.write(np.rint(clean * 32767.0).astype(np.int16))

    def finish(self) -> None:
        """Flush the resampler's tail."""
        if self._resampler is not None:
            self.write(np.empty(0, dtype=np.float32), last=True)

    def peaks(self, count: int) -> list[float]:
        return self._meter.peaks(count)


def _sndfile_message(exc: sf.LibsndfileError) -> str:
    return str(exc.error_string).removeprefix("Error : ").rstrip(".")


def _decode_sndfile(path: str, info: ProbeInfo, out: _AnalysisWriter, timeout_s: float) -> None:
    """Decode block by block into `out`; DecodeError when truncated, corrupt or too slow."""
    deadline = time.monotonic() + timeout_s
    decoded = 0
    with sf.SoundFile(path) as file:
        buffer = np.empty((BLOCK_FRAMES, file.channels), dtype=np.float32)
        to_mono = np.full(file.channels, 1.0 / file.channels, dtype=np.float32)
        while True:
            if time.monotonic() > deadline:
                raise DecodeError(f"decoding timed out after {timeout_s:g} s")
            try:
                block = file.read(dtype="float32", always_2d=True, out=buffer)
            except sf.LibsndfileError as exc:
                raise DecodeError(
                    f"truncated or corrupt {info.format}: decoding failed after "
                    f"{decoded / info.sample_rate:.1f} s of the {info.duration_s:.1f} s "
                    f"the header promises ({_sndfile_message(exc)})"
                ) from None
            if not len(block):
                break
            decoded += len(block)
            out.write(block @ to_mono)
    out.finish()
    if info.format not in _ESTIMATED_LENGTH and decoded < COMPLETE_FRACTION * info.frames:
        raise DecodeError(
            f"truncated {info.format}: header promises {info.duration_s:.1f} s "
            f"but only {decoded / info.sample_rate:.1f} s could be decoded"
        )


def _decode_ffmpeg(path: str, out: _AnalysisWriter, sample_rate: int, timeout_s: float) -> None:
    blocks = ffmpeg_blocks(path, sample_rate, timeout_s=timeout_s)
    with contextlib.closing(blocks):
        for block in blocks:
            out.write(block)


def decode_to_analysis(
    src_path: str,
    dst_path: str,
    *,
    target_rate: int = 22050,
    max_duration_s: float = 3600.0,
    timeout_s: float = 300.0,
    peaks: int = 512,
) -> DecodeResult:
    """Decode `src_path` to mono FLAC PCM_16 at `target_rate` in `dst_path`.

    Raises DecodeError (permanent, with a readable `.reason`); OSError and other exceptions are
    transient. On any failure `dst_path` is removed.
    """
    info = _probe(src_path, _read_head(src_path), max_duration_s, timeout_s)
    in_rate = info.sample_rate if info.decoder == "libsndfile" else target_rate
    try:
        with _AnalysisWriter(dst_path, in_rate, target_rate, max_duration_s) as out:
            if info.decoder == "libsndfile":
                _decode_sndfile(src_path, info, out, timeout_s)
            else:
                _decode_ffmpeg(src_path, out, target_rate, timeout_s)
        if not out.samples:
            raise DecodeError("no audio: the file contains 0 samples")
    except BaseException:
        Path(dst_path).unlink(missing_ok=True)
        raise
    return DecodeResult(
        sample_rate=target_rate,
        duration_s=round(out.samples / target_rate, 3),
        source_format=info.format,
        source_sample_rate=info.sample_rate,
        source_channels=info.channels,
        peaks=out.peaks(peaks),
    )


def read_analysis(path: str) -> tuple[np.ndarray, int]:
    """Read an analysis file back as (float32 mono samples, sample rate)."""
    samples, sample_rate = sf.read(path, dtype="float32")
    if samples.ndim != 1:
        raise ValueError(f"{path} is not an analysis file: {samples.shape[1]} channels")
    return samples, int(sample_rate)
