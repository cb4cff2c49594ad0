"""Similarity quality and model cost: does "more like this" find tracks of the same style?

A labelled corpus of General-MIDI renders (`tests.styles`: 12 styles — instrumentation, tempo
range, density — several variants each, differing in tempo, key, melody, velocities and level) is
analysed by the pipeline's own cores: the features core (for the embedding-version-1 feature
vector, `bench.baseline`) and the musicnn core (for the learned `audio` vector). For each track
its k nearest neighbours by cosine are found among all the others, with either vector; the score
is the share of those neighbours that have the track's style (chance: (variants − 1) / (tracks −
1)). The models' time per minute of audio is measured on the same corpus, on one thread, as a
pool worker runs them (CPU seconds of this process, so other load on the machine does not
inflate it). The corpus was not used to choose anything in the models or the vector.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from bench.baseline import feature_vector
from bench.report import markdown_table, phase, verdict
from handlers.embedding.audio import audio_vector
from handlers.features.core import analyse
from handlers.understanding.core import listen, models
from tests.styles import STYLES, render_style

RATE = 22050
KS = (1, 5)


def _agreement(labels: npt.NDArray[np.str_], vectors: npt.NDArray[np.float64], k: int) -> float:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def measure_similarity(variants: int, seconds: float, patches: int) -> dict[str, Any]:
    torch.set_num_threads(1)  # as in a pool worker
    models()  # load once, outside the timing
    labels: list[str] = []
    old: list[list[float]] = []
    new: list[list[float]] = []
    model_s = 0.0
    with phase(f"similarity corpus: {len(STYLES)} styles × {variants}, {seconds:.0f} s each"):
        for style in STYLES:
            for seed in range(variants):
                audio = render_style(style, seed=seed, seconds=seconds, sample_rate=RATE)
                labels.append(style.name)
                old.append(feature_vector(analyse(audio, RATE)))
                began = time.process_time()  # CPU time: robust to other load on the machine
                scores = listen(audio, RATE, max_patches=patches)
                model_s += time.process_time() - began
                new.append(audio_vector(scores))
    names = np.asarray(labels)
    minutes = len(labels) * seconds / 60.0
    return {
        "tracks": len(labels),
        "styles": len(STYLES),
        "seconds": seconds,
        "patches": patches,
        "chance": round((variants - 1) / (len(labels) - 1), 3),
        "baseline": {k: round(_agreement(names, np.asarray(old), k), 3) for k in KS},
        "learned": {k: round(_agreement(names, np.asarray(new), k), 3) for k in KS},
        "model_s_per_track": round(model_s / len(labels), 3),
        "model_s_per_audio_minute": round(model_s / minutes, 3),
    }


def similarity_table(result: dict[str, Any]) -> str:
    base, learned = result["baseline"], result["learned"]
    rows = [
        (
            f"same-style nearest neighbour ({result['tracks']} renders, {result['styles']} styles)",
            f"learned {learned[1]:.0%} / features {base[1]:.0%}",
            f"learned > features: {verdict(learned[1] > base[1])}",
        ),
        (
            "same-style share of 5 nearest neighbours",
            f"learned {learned[5]:.0%} / features {base[5]:.0%} (chance {result['chance']:.0%})",
            f"learned > features: {verdict(learned[5] > base[5])}",
        ),
        (
            f"both models, {result['patches']} patches, one thread: CPU per track",
            f"{result['model_s_per_track']} s (fixed: does not grow with track length)",
            "—",
        ),
    ]
    return markdown_table(("measurement", "value", "target"), rows)
