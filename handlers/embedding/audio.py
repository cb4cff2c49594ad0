"""The `audio` vector for "more like this", and the text that CLIP embeds for a track.

The acoustic vector is learned: the penultimate layers of the two musicnn models (MSD and MTT,
200 units each, averaged over the patches the models heard), standardised per dimension and
scaled to unit length, so the cosine of two tracks' vectors is their likeness as the models hear
it. Each penultimate unit is a batch-norm output, so the models' own batch-norm shift (beta) and
scale (|gamma|) are its mean and spread over their training music: standardising with them needs
no statistics of the library, and a vector never drifts as tracks are added. On the labelled
style corpus of `just bench` this puts more same-style tracks among the nearest neighbours than
the hand-weighted feature vector it replaced (embedding version 1, now `bench/baseline.py`).
Changing anything here changes every vector: bump the `embedding_version` setting with it.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import numpy.typing as npt

from handlers.understanding.weights import MODEL_NAME, penultimate_stats
from schemas.payloads import AUDIO_VECTOR_DIM, KEY_NAMES, Features, Tags, TagScores

_TINY = 1e-6


class NoModelScoresError(ValueError):
    """The track was tagged without the models' scores (e.g. by an older tagging stage)."""


@functools.cache
def _standardisation() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    mean, spread = penultimate_stats()
    return mean, np.maximum(spread, _TINY)


def audio_vector(scores: TagScores | None) -> list[float]:
    """AUDIO_VECTOR_DIM floats, unit L2 norm: cosine of two tracks' vectors = acoustic likeness."""
    if scores is None or scores.model != MODEL_NAME:
        found = "no model scores" if scores is None else f"scores of {scores.model!r}"
        raise NoModelScoresError(
            f"the tagged event carries {found}, not {MODEL_NAME}: replay it from the tagging stage"
        )
    embedding = np.asarray(scores.embedding, dtype=np.float64)
    if embedding.shape != (AUDIO_VECTOR_DIM,) or not np.all(np.isfinite(embedding)):
        raise NoModelScoresError(f"the model embedding is not {AUDIO_VECTOR_DIM} finite numbers")
    mean, spread = _standardisation()
    z = (embedding - mean) / spread
    norm = float(np.linalg.norm(z))
    if norm == 0:
        z[0], norm = 1.0, 1.0  # exactly the training mean: any fixed direction will do
    return [float(v) for v in z / norm]


def _tonic(features: Features) -> int | None:
    return KEY_NAMES.index(features.key) if features.key in KEY_NAMES else None


# CLIP reads 77 tokens, 2 of them markers. Its tokens are at most a digit, a punctuation mark or
# a run of letters, and a run splits into more tokens the rarer and longer it is: estimating one
# token per 5 letters over-counts common words, so the caption is never cut off mid-text.
_SEMANTIC_TOKEN_BUDGET = 70
_TOKEN_RUN = re.compile(r"[^\W\d_]+|\d|[^\w\s]|_")


def _tokens(text: str) -> int:
    return sum(-(-len(run) // 5) for run in _TOKEN_RUN.findall(text))


def semantic_text(tags: Tags, features: Features) -> str:
    """What CLIP embeds for a track: a caption of its tags first, then as much description as fits.

    Tags lead because CLIP truncates at 77 tokens and they are the most query-like part.
    """
    styles = " ".join(part for part in (", ".join(tags.mood), ", ".join(tags.genre)) if part)
    sound = [*tags.instruments[:2], *tags.vocals[:1]]
    details = [
        f"{value} {noun}"
        for value, noun in (
            (tags.tempo_class, "tempo"),
            (tags.energy, "energy"),
            (tags.brightness, "sound"),
        )
        if value
    ]
    if _tonic(features) is not None:
        details.append(f"{features.key} {features.mode}")
    text = f"{styles} music" if styles else "music"
    if sound:
        text += " with " + ", ".join(sound)
    if details:
        text = f"{text}; {', '.join(details)}."
    budget = _SEMANTIC_TOKEN_BUDGET - _tokens(text)
    for word in tags.description.split():
        budget -= _tokens(word)
        if budget < 0:
            break
        text = f"{text} {word}"
    return text
