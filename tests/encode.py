"""Real encoded files for tests, written with FFmpeg's encoders through PyAV.

Every format the decode stage claims to read is produced by the encoder that makes it in the
wild (AAC and ALAC in M4A, Opus and Vorbis in Ogg, MP3, FLAC, WAV at several sample formats), with
tags and cover art where the container carries them — never by a script pretending to be one.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

# name → (container format, encoder)
FORMATS: dict[str, tuple[str, str]] = {
    "m4a-aac": ("ipod", "aac"),
    "m4a-alac": ("ipod", "alac"),
    "opus": ("ogg", "libopus"),
    "vorbis": ("ogg", "vorbis"),  # FFmpeg's own Vorbis encoder: stereo only
    "mp3": ("mp3", "libmp3lame"),
    "flac": ("flac", "flac"),
    "wav-s16": ("wav", "pcm_s16le"),
    "wav-s24": ("wav", "pcm_s24le"),
    "wav-f32": ("wav", "pcm_f32le"),
}
SUFFIX = {"ipod": ".m4a", "ogg": ".ogg", "mp3": ".mp3", "flac": ".flac", "wav": ".wav"}
_FRAME = 1024


def encode(
    path: Path,
    samples: npt.NDArray[np.floating],
    sample_rate: int,
    kind: str,
    *,
    layout: str | None = None,
    tags: Mapping[str, str] | None = None,
    cover: bytes | None = None,
    bit_rate: int | None = None,
    options: Mapping[str, str] | None = None,
) -> Path:
    """Encode planar `samples` (channels, frames) in [-1, 1] as `kind` (a FORMATS key)."""
    container_format, codec = FORMATS[kind]
    channels = samples.shape[0]
    layout = layout or {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    tags = dict(tags or {})
    if cover is not None and container_format == "ogg":  # Vorbis comments carry pictures inline
        tags["METADATA_BLOCK_PICTURE"] = base64.b64encode(_flac_picture(cover)).decode()
        cover = None
    if cover is not None and container_format == "ipod":  # the iPod brand refuses picture streams
        container_format = "mp4"
    with av.open(str(path), "w", format=container_format, options=dict(options or {})) as out:
        for key, value in tags.items():
            out.metadata[key] = value
        options = {"strict": "experimental"} if codec == "vorbis" else None
        stream = out.add_stream(codec, rate=sample_rate, layout=layout, options=options)
        if bit_rate:
            stream.bit_rate = bit_rate
        if cover is not None:
            picture = out.add_stream("mjpeg" if cover.startswith(b"\xff\xd8") else "png")
            picture.width = picture.height = 32
            picture.pix_fmt = "yuvj420p" if cover.startswith(b"\xff\xd8") else "rgb24"
            picture.disposition = av.stream.Disposition.attached_pic
        formats = stream.codec_context.codec.audio_formats
        target = formats[0].name if formats else "fltp"
        resampler = av.AudioResampler(format=target, layout=layout, rate=sample_rate)
        frame_size = stream.codec_context.frame_size or _FRAME
        planar = np.ascontiguousarray(samples, dtype=np.float32)
        if cover is not None:
            packet = av.Packet(cover)
            packet.stream = picture
            out.mux(packet)
        for start in range(0, planar.shape[1], frame_size):
            chunk = np.ascontiguousarray(planar[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return path


def _flac_picture(image: bytes) -> bytes:
    """A FLAC PICTURE block body (front cover), as Vorbis comments embed it."""
    mime = b"image/jpeg" if image.startswith(b"\xff\xd8") else b"image/png"
    fields = struct.pack(">II", 3, len(mime)) + mime + struct.pack(">I", 0)
    return fields + struct.pack(">IIIII", 32, 32, 24, 0, len(image)) + image


def tone(
    seconds: float, rate: int, channels: int = 2, freq: float = 440.0, amp: float = 0.5
) -> npt.NDArray[np.float32]:
    """A sine on every channel, with 20 ms fades so no encoder sees a click."""
    t = np.arange(round(seconds * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    mono = amp * np.sin(2 * np.pi * freq * t) * fade
    return np.repeat(mono[None, :], channels, axis=0).astype(np.float32)
