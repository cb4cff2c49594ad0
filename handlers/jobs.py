"""Entry points that run inside pool processes; each loads its heavy state once per process."""

from __future__ import annotations

import functools

from handlers.decode.core import read_analysis
from handlers.embedding.clip import ClipEmbedder, try_load_clip
from handlers.features.core import analyse
from schemas.payloads import Features


def analyse_file(path: str) -> Features:
    samples, rate = read_analysis(path)
    return analyse(samples, rate)


@functools.cache
def _clip(model: str, pretrained: str, allow_download: bool) -> ClipEmbedder | None:
    return try_load_clip(model, pretrained, allow_download=allow_download)


def embed_text(
    text: str, model: str, pretrained: str, allow_download: bool
) -> tuple[list[float], str] | None:
    """The CLIP text vector and model name, or None when no weights could be loaded."""
    clip = _clip(model, pretrained, allow_download)
    if clip is None:
        return None
    return clip.embed_texts([text])[0], clip.name
