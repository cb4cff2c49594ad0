"""Run both musicnn models on a track: 100 tag probabilities and the two penultimate embeddings.

The models are built once per process (`functools.cache`) — a pool worker loads them on its
first track and keeps them warm. A track is described by up to `max_patches` evenly spaced 3-s
patches: tag probabilities are the mean over patches (musicnn's own taggram average), each
model's embedding the mean of its penultimate layer.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import soxr
import torch

from handlers.understanding.labels import MSD_LABELS, MTT_LABELS
from handlers.understanding.melspec import SAMPLE_RATE, log_mel_patches
from handlers.understanding.model import Musicnn
from handlers.understanding.weights import MODEL_NAME, MODELS, load_weights
from schemas.payloads import TagScores

_PROBABILITY_DECIMALS = 4
_EMBEDDING_DECIMALS = 5


@functools.cache
def models() -> tuple[Musicnn, Musicnn]:
    """The MSD and MTT models, loaded from the verified wheel files (once per process)."""
    msd, mtt = (Musicnn(load_weights(name)) for name in MODELS)
    return msd, mtt


def to_model_rate(samples: npt.NDArray[np.floating], rate: int) -> npt.NDArray[np.float32]:
    mono = np.asarray(samples, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return mono


def listen(samples: npt.NDArray[np.floating], rate: int, *, max_patches: int) -> TagScores:
    """Tag probabilities and embeddings of mono (or [n, channels]) float audio at `rate`."""
    patches = torch.from_numpy(log_mel_patches(to_model_rate(samples, rate), max_patches))
    probabilities: list[npt.NDArray[np.float32]] = []
    embeddings: list[npt.NDArray[np.float32]] = []
    with torch.inference_mode():
        for model in models():
            probs, penultimate = model(patches)
            probabilities.append(probs.mean(dim=0).numpy())
            embeddings.append(penultimate.mean(dim=0).numpy())
    msd, mtt = probabilities
    return TagScores(
        model=MODEL_NAME,
        msd=_named(MSD_LABELS, msd),
        mtt=_named(MTT_LABELS, mtt),
        embedding=[round(float(v), _EMBEDDING_DECIMALS) for v in np.concatenate(embeddings)],
        patches=int(patches.shape[0]),
    )


def _named(labels: tuple[str, ...], values: npt.NDArray[np.float32]) -> dict[str, float]:
    return {
        label: round(float(value), _PROBABILITY_DECIMALS)
        for label, value in zip(labels, values, strict=True)
    }
