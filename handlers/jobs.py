"""Entry points that run inside pool processes; each loads its heavy state once per process."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from handlers.decode.core import DecodeResult, decode_to_analysis, read_analysis
from handlers.embedding.audio import audio_vector
from handlers.embedding.clip import ClipEmbedder, try_load_clip
from handlers.features.core import analyse
from handlers.fingerprint.core import Hashes, Times, fingerprint, fingerprint_clip
from schemas.payloads import Features, Loudness, TagScores


def analyse_file(path: str, programme: Loudness | None = None) -> Features:
    """Features of a stored analysis file; `programme` is the loudness decode measured."""
    samples, rate = read_analysis(path)
    return analyse(samples, rate, programme)


def listen_file(path: str, *, max_patches: int) -> TagScores:
    """The musicnn tag probabilities and embeddings of an analysis file (models warm per
    process)."""
    # imported here: processes that only decode or measure never load torch
    from handlers.understanding.core import listen  # noqa: PLC0415

    samples, rate = read_analysis(path)
    return listen(samples, rate, max_patches=max_patches)


@contextlib.contextmanager
def _decoded(
    path: str, *, target_rate: int, max_duration_s: float, timeout_s: float
) -> Iterator[tuple[DecodeResult, str]]:
    """`path` decoded to a temporary analysis file (DecodeError if it is not usable audio):
    what the decode stage computes, without storing anything."""
    with tempfile.TemporaryDirectory(prefix="tonestream-decoded-") as tmp:
        analysis = str(Path(tmp) / "analysis.flac")
        decoded = decode_to_analysis(
            path,
            analysis,
            target_rate=target_rate,
            max_duration_s=max_duration_s,
            timeout_s=timeout_s,
        )
        yield decoded, analysis


def decode_and_analyse(
    path: str, *, target_rate: int, max_duration_s: float, timeout_s: float
) -> tuple[DecodeResult, Features]:
    """What the decode and features stages compute for a file, without storing anything."""
    decoding = _decoded(
        path, target_rate=target_rate, max_duration_s=max_duration_s, timeout_s=timeout_s
    )
    with decoding as (decoded, analysis):
        return decoded, analyse_file(analysis, decoded.loudness)


def example_audio_vector(
    path: str, *, target_rate: int, max_duration_s: float, timeout_s: float, max_patches: int
) -> list[float]:
    """An audio search example's vector, exactly as the pipeline computes a track's: decode to
    the analysis audio, let the models listen, standardise their embedding."""
    decoding = _decoded(
        path, target_rate=target_rate, max_duration_s=max_duration_s, timeout_s=timeout_s
    )
    with decoding as (_, analysis):
        return audio_vector(listen_file(analysis, max_patches=max_patches))


def fingerprint_file(path: str) -> tuple[Hashes, Times]:
    """The landmark hashes of a stored analysis file and their anchor frames."""
    samples, rate = read_analysis(path)
    return fingerprint(samples, rate)


def fingerprint_example(
    path: str, *, target_rate: int, max_duration_s: float, timeout_s: float
) -> tuple[Hashes, Times]:
    """A clip to identify: decoded to the analysis audio by the decode stage's code (DecodeError
    if it is not usable audio or too long), then hashed on shifted grids (fingerprint_clip)."""
    decoding = _decoded(
        path, target_rate=target_rate, max_duration_s=max_duration_s, timeout_s=timeout_s
    )
    with decoding as (_, analysis):
        return fingerprint_clip(*read_analysis(analysis))


@functools.cache
def _clip(model: str, pretrained: str, allow_download: bool) -> ClipEmbedder | None:
    return try_load_clip(model, pretrained, allow_download=allow_download)


def load_clip(model: str, pretrained: str, allow_download: bool) -> bool:
    """Load CLIP in this process ahead of its first use; False when no weights could be loaded."""
    return _clip(model, pretrained, allow_download) is not None


def embed_text(
    text: str, model: str, pretrained: str, allow_download: bool
) -> tuple[list[float], str] | None:
    """The CLIP text vector and model name, or None when no weights could be loaded."""
    clip = _clip(model, pretrained, allow_download)
    if clip is None:
        return None
    return clip.embed_texts([text])[0], clip.name


def embed_image(
    data: bytes, model: str, pretrained: str, allow_download: bool
) -> tuple[list[float], str] | None:
    """The CLIP vector of an encoded image and the model name, or None when no weights could be
    loaded; ValueError when the bytes are not a decodable image."""
    clip = _clip(model, pretrained, allow_download)
    if clip is None:
        return None
    return clip.embed_image(data), clip.name
