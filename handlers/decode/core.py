"""Decode-stage core: any accepted upload becomes the one analysis audio file later stages read.

Pure apart from the paths it is given, so the handler can run it in a process-pool worker (whose
address space is capped). FFmpeg's own libraries, inside the `av` wheel, read every common format
in-process (WAV, AIFF, FLAC, MP3, Ogg Vorbis/Opus, AAC/ALAC in M4A, WMA, WebM…). The upload is
sniffed (never trusting its name) and probed — absurd headers and over-long files are refused
before any decoding — then decoded packet by packet with a wall-clock deadline. Every block feeds
two consumers:
- the loudness meter, on the source channels at the source rate (BS.1770-4 needs both);
- the analysis writer: the mean of the channels, resampled by a streaming soxr resampler and
  written as mono FLAC PCM_16 at the analysis rate, with display peaks metered on the way.
The file's tags and cover art are read from the container. Memory stays flat however long the
upload is. Everything permanent (not audio, corrupt, truncated, too long) raises DecodeError with
a readable reason, and leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import av
import av.container
import msgspec
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from handlers import progress
from handlers.decode import metadata
from handlers.decode.errors import DecodeError
from handlers.decode.loudness import LoudnessMeter, channel_weights
from schemas.payloads import DecodedAudio, FileMetadata, Loudness
from stores.media import ffmpeg_message, open_audio
from stores.sniff import HEAD_BYTES, NotAudioError, check_head, wav_header

__all__ = [
    "DecodeError",
    "DecodeResult",
    "ProbeInfo",
    "decode_to_analysis",
    "probe",
    "read_analysis",
]

F32 = npt.NDArray[np.float32]

MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
BLOCK_SAMPLES = 1 << 19
"""Decoded frames are gathered into blocks of this many samples (all channels together) before
they are measured: large enough that per-block overheads vanish (6 s of 44.1 kHz stereo), small
enough that a 32-channel file's temporaries stay a few tens of MB."""
COMPLETE_FRACTION = 0.98
"""Fewer decoded frames than this share of what the header promises means a truncated file."""
PEAK_HOP = 32
"""Analysis samples per stored peak; the display peaks are maxima over runs of these."""
_RESAMPLE_QUALITY = "MQ"  # aliasing is irrelevant for analysis; HQ costs the same here, LQ no less
_FLAC_COMPRESSION = 0.0  # fastest level; the analysis file is transient and already small
_EXACT_LENGTH = frozenset({"WAV", "W64", "AIFF", "FLAC", "CAF", "M4A", "MP4"})
"""Formats whose header states the length exactly, so a shortfall means truncation."""
_SAMPLE_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "s64": 9.223372036854776e18}  # u8: offset too
_FLOAT_FORMATS = frozenset({"flt", "dbl"})
_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(kind) for name, kind in
    (("u8", "u1"), ("s16", "i2"), ("s32", "i4"), ("s64", "i8"), ("flt", "f4"), ("dbl", "f8"))
}  # fmt: skip


class ProbeInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What the upload's header says; frames and duration are 0 when it does not say."""

    format: str
    codec: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float


class DecodeResult(msgspec.Struct, kw_only=True, frozen=True):
    """DecodedAudio minus the blob keys, which the caller assigns when it uploads the files."""

    sample_rate: int
    duration_s: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    peaks: list[float]
    loudness: Loudness
    metadata: FileMetadata
    cover_type: str | None = None
    """MIME type of the cover art written to `cover_path`, when there was one worth keeping."""

    def to_payload(self, analysis_key: str, cover_key: str | None = None) -> DecodedAudio:
        tags = self.metadata
        if cover_key is not None and self.cover_type is not None:
            tags = metadata.with_cover(tags, cover_key, self.cover_type)
        return DecodedAudio(
            analysis_key=analysis_key,
            sample_rate=self.sample_rate,
            duration_s=self.duration_s,
            source_format=self.source_format,
            source_sample_rate=self.source_sample_rate,
            source_channels=self.source_channels,
            peaks=self.peaks,
            loudness=self.loudness,
            metadata=tags,
        )


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


class _Sniffed(NamedTuple):
    format: str | None
    promised_frames: int | None
    """What a WAV header promises: FFmpeg reads a truncated WAV's length from the file size."""


def _sniff(path: str) -> _Sniffed:
    """The sniffed format; refuses empty files, obvious non-audio and absurd WAV headers."""
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
    try:
        fmt = check_head(head)
    except NotAudioError as exc:
        raise DecodeError(exc.reason) from None
    wav = wav_header(head)
    if wav is not None:  # checked here: FFmpeg refuses these with less helpful words
        _check_rate(wav.sample_rate)
        _check_channels(wav.channels)
        if wav.promised_frames == 0:
            raise DecodeError("no audio: the file contains 0 samples")
    return _Sniffed(fmt, wav.promised_frames if wav else None)


@contextlib.contextmanager
def _opened(
    path: str, fmt: str | None
) -> Iterator[tuple[av.container.InputContainer, av.AudioStream]]:
    try:
        with open_audio(path, fmt) as opened:
            yield opened
    except NotAudioError as exc:
        raise DecodeError(exc.reason) from None


def _probe_open(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    sniffed: _Sniffed,
    max_duration_s: float,
) -> ProbeInfo:
    context = stream.codec_context
    _check_rate(context.sample_rate)
    _check_channels(context.channels)
    if stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / av.time_base
    else:
        duration_s = 0.0
    duration_s = max(duration_s, (sniffed.promised_frames or 0) / context.sample_rate, 0.0)
    _check_duration(duration_s, max_duration_s)
    return ProbeInfo(
        format=sniffed.format or container.format.name.split(",")[0].upper(),
        codec=context.name,
        sample_rate=context.sample_rate,
        channels=context.channels,
        frames=round(duration_s * context.sample_rate),
        duration_s=duration_s,
    )


def probe(path: str, *, max_duration_s: float = 3600.0) -> ProbeInfo:
    """Sniff and probe `path` without decoding it; DecodeError for non-audio or absurd headers."""
    sniffed = _sniff(path)
    with _opened(path, sniffed.format) as (container, stream):
        return _probe_open(container, stream, sniffed, max_duration_s)


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
        clean = np.clip(out, -1.0, 1.0)
        self._meter.add(clean)
        self._file.write(np.rint(clean * 32767.0).astype(np.int16))

    def finish(self) -> None:
        """Flush the resampler's tail."""
        if self._resampler is not None:
            self.write(np.empty(0, dtype=np.float32), last=True)

    def peaks(self, count: int) -> list[float]:
        return self._meter.peaks(count)


def _frame_samples(frame: av.AudioFrame, name: str, channels: int) -> list[np.ndarray]:
    """A decoded frame's samples as views of its buffers: one (samples,) array per channel when
    planar, one (samples, channels) array when packed."""
    dtype, count = _DTYPES[name], frame.samples
    if frame.format.is_planar:
        return [np.frombuffer(memoryview(plane), dtype, count) for plane in frame.planes]
    packed = np.frombuffer(memoryview(frame.planes[0]), dtype, count * channels)
    return [packed.reshape(count, channels)]


def _convert(samples: np.ndarray, name: str, out: F32) -> None:
    """Write samples of the (planar-agnostic) sample format `name` into `out` as float32 in
    [-1, 1): one pass, no temporary array."""
    if name == "u8":
        np.subtract(samples, 128, out=out, dtype=np.float32)
        out *= np.float32(1.0 / 128.0)
    elif name in _SAMPLE_SCALE:
        np.multiply(samples, np.float32(1.0 / _SAMPLE_SCALE[name]), out=out, casting="unsafe")
    else:
        out[...] = samples


class _Block:
    """Decoded frames converted straight into one float32 block, in the frames' own layout
    (channels × frames when planar, frames × channels when packed, so every copy is contiguous)."""

    def __init__(self, channels: int, planar: bool) -> None:
        self.planar = planar
        self.size = max(1, BLOCK_SAMPLES // channels)
        shape = (channels, self.size) if planar else (self.size, channels)
        self._data = np.empty(shape, dtype=np.float32)
        self._floats = False
        self.filled = 0

    def add(self, samples: list[np.ndarray], start: int, count: int, name: str) -> None:
        begin, end = self.filled, self.filled + count
        if self.planar:
            for row, plane in zip(self._data, samples, strict=True):
                _convert(plane[start : start + count], name, row[begin:end])
        else:
            _convert(samples[0][start : start + count], name, self._data[begin:end])
        self._floats |= name in _FLOAT_FORMATS
        self.filled = end

    def planar_view(self) -> F32:
        """The block as (channels, frames); NaN and infinity (corrupt float data) become 0."""
        data = self._data[:, : self.filled] if self.planar else self._data[: self.filled].T
        if self._floats and not np.isfinite(data.sum()):
            np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return data


def _downmix(block: F32) -> F32:
    """The mean of the channels, row by row (a reduction across a packed block's channel axis
    would run numpy's inner loop once per frame)."""
    mono: F32 = block[0].copy()
    for row in block[1:]:
        mono += row
    if len(block) > 1:
        mono *= np.float32(1.0 / len(block))
    return mono


class _Decoding:
    """One pass over the audio stream: blocks to the meter and the writer, the cover on the side."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.AudioStream,
        info: ProbeInfo,
        deadline: float,
        timeout_s: float,
    ) -> None:
        self.container = container
        self.info = info
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.stream = stream
        self.covers = [
            s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic
        ]
        self.cover = b""
        self.frames = 0

    def blocks(self) -> Iterator[F32]:
        """Planar float32 (channels, frames) blocks of BLOCK_SAMPLES samples (fewer at the end or
        where the decoder switches between planar and packed output), in order."""
        channels = self.info.channels
        block: _Block | None = None
        for frame in self._frames():
            if frame.sample_rate != self.info.sample_rate or frame.layout.nb_channels != channels:
                raise DecodeError(
                    "unsupported stream: the sample rate or channel count changes mid-stream"
                )
            name = frame.format.name.rstrip("p")
            planar = frame.format.is_planar
            samples = _frame_samples(frame, name, channels)
            if block is not None and block.planar != planar:
                yield block.planar_view()
                block = None
            start = 0
            while start < frame.samples:
                if block is None:
                    block = _Block(channels, planar)
                take = min(frame.samples - start, block.size - block.filled)
                block.add(samples, start, take, name)
                start += take
                if block.filled == block.size:
                    yield block.planar_view()
                    block = None
        if block is not None:
            yield block.planar_view()

    def _frames(self) -> Iterator[av.AudioFrame]:
        try:
            for packet in self.container.demux(self.stream, *self.covers):
                if time.monotonic() > self.deadline:
                    raise DecodeError(f"decoding timed out after {self.timeout_s:g} s")
                if packet.stream is not self.stream:
                    if not self.cover and packet.size:
                        self.cover = bytes(packet)
                    continue
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        self.frames += frame.samples
                        yield frame
        except av.FFmpegError as exc:
            decoded_s = self.frames / self.info.sample_rate
            promised = f" of the {self.info.duration_s:.1f} s" if self.info.duration_s else ""
            raise DecodeError(
                f"truncated or corrupt {self.info.format}: decoding failed after "
                f"{decoded_s:.1f} s{promised} the header promises ({ffmpeg_message(exc)})"
            ) from None

    def check_complete(self) -> None:
        info = self.info
        if info.format in _EXACT_LENGTH and self.frames < COMPLETE_FRACTION * info.frames:
            raise DecodeError(
                f"truncated {info.format}: header promises {info.duration_s:.1f} s "
                f"but only {self.frames / info.sample_rate:.1f} s could be decoded"
            )


def decode_to_analysis(
    src_path: str,
    dst_path: str,
    *,
    cover_path: str | None = None,
    target_rate: int = 22050,
    max_duration_s: float = 3600.0,
    timeout_s: float = 300.0,
    peaks: int = 512,
) -> DecodeResult:
    """Decode `src_path` to mono FLAC PCM_16 at `target_rate` in `dst_path`, measuring loudness
    on the source channels and reading the tags; the cover art, if any, goes to `cover_path`.

    Raises DecodeError (permanent, with a readable `.reason`); OSError and other exceptions are
    transient. On any failure neither output file remains.
    """
    deadline = time.monotonic() + timeout_s
    sniffed = _sniff(src_path)
    try:
        with _opened(src_path, sniffed.format) as (container, stream):
            info = _probe_open(container, stream, sniffed, max_duration_s)
            decoding = _Decoding(container, stream, info, deadline, timeout_s)
            weights = channel_weights([c.name for c in decoding.stream.layout.channels])
            if len(weights) != info.channels:  # an unknown layout: every channel counts fully
                weights = [1.0] * info.channels
            meter = LoudnessMeter(info.sample_rate, weights)
            with _AnalysisWriter(dst_path, info.sample_rate, target_rate, max_duration_s) as out:
                for block in decoding.blocks():
                    meter.add(block)
                    out.write(_downmix(block))
                    if info.frames:
                        progress.report(decoding.frames / info.frames)
                out.finish()
            if not out.samples:
                raise DecodeError("no audio: the file contains 0 samples")
            decoding.check_complete()
            tags = metadata.read_tags(
                container.metadata,
                decoding.stream.metadata,
                codec=info.codec,
                bit_rate=decoding.stream.bit_rate or container.bit_rate,
            )
            cover = metadata.cover_type(decoding.cover)
            if cover and cover_path:
                Path(cover_path).write_bytes(decoding.cover)
    except BaseException:
        Path(dst_path).unlink(missing_ok=True)
        if cover_path:
            Path(cover_path).unlink(missing_ok=True)
        raise
    return DecodeResult(
        sample_rate=target_rate,
        duration_s=round(out.samples / target_rate, 3),
        source_format=info.format,
        source_sample_rate=info.sample_rate,
        source_channels=info.channels,
        peaks=out.peaks(peaks),
        loudness=meter.result(),
        metadata=tags,
        cover_type=cover if cover_path else None,
    )


def read_analysis(path: str) -> tuple[np.ndarray, int]:
    """Read an analysis file back as (float32 mono samples, sample rate)."""
    samples, sample_rate = sf.read(path, dtype="float32")
    if samples.ndim != 1:
        raise ValueError(f"{path} is not an analysis file: {samples.shape[1]} channels")
    return samples, int(sample_rate)
