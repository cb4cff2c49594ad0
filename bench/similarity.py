"""Similarity quality and model cost: does "more like this" find tracks of the same style?

The labelled corpus comes from a different source than the tests' (tests.styles, rendered with
TimGM6mb): arrangements composed by the tempo/key corpus (`bench.corpus`: its grooves, chord
progressions and melodies) and rendered through the FluidR3_GM SoundFont. A style is an
arrangement — General MIDI programs for chords, bass and lead, a groove, a tempo range — and
its variants differ in key, mode, progression, tempo, melody and level. Labels are the style
names. Each track is analysed by the pipeline's own cores: the features core (the
embedding-version-1 feature vector, `bench.baseline`) and the musicnn core (the learned `audio`
vector). For each track its k nearest neighbours by cosine are found among all the others, with
either vector; the score is the share of those neighbours that have the track's style (chance:
(variants − 1) / (tracks − 1)). The models' time per minute of audio is measured on the same
corpus, on one thread, as a pool worker runs them (CPU seconds of this process, so other load on
the machine does not inflate it). Nothing in the models or the vector was chosen on this corpus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from bench.baseline import feature_vector
from bench.corpus import (
    _SCALES,  # the progressions' scales (bench.corpus keeps them private)
    GROOVES,
    PROGRESSIONS,
    Harmony,
    Piece,
    Renderer,
    compose,
    find_soundfont,
)
from bench.report import markdown_table, phase, verdict
from handlers.embedding.audio import audio_vector
from handlers.features.core import analyse
from handlers.understanding.core import listen, models
from schemas.payloads import KEY_NAMES, MODES

RATE = 22050
KS = (1, 5)
SOUNDFONT = "FluidR3_GM.sf2"  # the tests render with TimGM6mb
SEED = 7_310


@dataclass(frozen=True)
class Style:
    name: str
    programs: tuple[int, int, int]  # General MIDI programs (0-based): chords, bass, lead
    groove: str  # a bench.corpus groove
    bpm: tuple[float, float]


# Tempo ranges overlap on purpose: tempo alone must not tell the styles apart.
STYLES: tuple[Style, ...] = (
    Style("piano ballad", (0, 32, 0), "drumless arpeggio", (60, 100)),
    Style("string drumless", (48, 42, 40), "drumless arpeggio", (60, 100)),
    Style("electro four on the floor", (89, 38, 80), "four on the floor", (110, 135)),
    Style("rock", (29, 33, 30), "double-time hats", (90, 150)),
    Style("jazz shuffle", (4, 32, 65), "shuffle", (90, 140)),
    Style("organ waltz", (19, 32, 73), "waltz 3/4", (80, 130)),
    Style("breakbeat", (5, 39, 11), "breakbeat", (80, 120)),
    Style("brass 6/8", (61, 58, 56), "compound 6/8", (60, 110)),
    Style("folk guitar", (25, 32, 22), "half-time", (70, 120)),
    Style("synth pad syncopated", (88, 38, 81), "syncopated", (95, 135)),
)


def _render(
    style: Style, variant: int, seconds: float, render: Renderer, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """One mono render of `style` (key, mode, progression, tempo and level drawn from rng)."""
    mode = MODES[int(rng.integers(len(MODES)))]
    scale, degrees = PROGRESSIONS[mode][int(rng.integers(len(PROGRESSIONS[mode])))]
    piece = Piece(
        path=f"{style.name}-{variant}.wav",
        bpm=round(float(rng.uniform(*style.bpm)), 2),
        key=KEY_NAMES[int(rng.integers(len(KEY_NAMES)))],
        mode=mode,
        groove=style.groove,
        meter="",
        progression=scale,
        programs=style.programs,
        tuning_cents=0.0,
        sample_rate=RATE,
    )
    groove = GROOVES[style.groove][variant % 2]
    midi = compose(piece, groove, Harmony(_SCALES[scale], degrees), seconds, rng)
    stereo = render(midi, RATE, 0.0)[: round(seconds * RATE)]
    level = np.float32(10 ** (-float(rng.uniform(0, 20)) / 20))  # peak −1 to −21 dBFS
    mono: npt.NDArray[np.float32] = stereo.mean(axis=1).astype(np.float32) * level
    return mono


def _agreement(labels: npt.NDArray[np.str_], vectors: npt.NDArray[np.float64], k: int) -> float:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def _unit(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = vectors / np.where(norms > 0, norms, 1.0)
    return out


def measure_similarity(variants: int, seconds: float, patches: int) -> dict[str, Any]:
    torch.set_num_threads(1)  # as in a pool worker
    models()  # load once, outside the timing
    labels: list[str] = []
    old: list[list[float]] = []
    new: list[list[float]] = []
    model_s = 0.0
    render = Renderer(find_soundfont(SOUNDFONT))
    rng = np.random.default_rng(SEED)
    with phase(f"similarity corpus: {len(STYLES)} styles × {variants}, {seconds:.0f} s each"):
        for style in STYLES:
            for variant in range(variants):
                audio = _render(style, variant, seconds, render, rng)
                labels.append(style.name)
                old.append(feature_vector(analyse(audio, RATE)))
                began = time.process_time()  # CPU time: robust to other load on the machine
                scores = listen(audio, RATE, max_patches=patches)
                model_s += time.process_time() - began
                new.append(audio_vector(scores))
    names = np.asarray(labels)
    minutes = len(labels) * seconds / 60.0
    # for information, not a vector in use: both unit vectors side by side, equally weighted
    both = np.hstack([_unit(np.asarray(old)), _unit(np.asarray(new))]) / np.sqrt(2.0)
    return {
        "source": f"bench.corpus arrangements rendered with {SOUNDFONT}",
        "tracks": len(labels),
        "styles": len(STYLES),
        "seconds": seconds,
        "patches": patches,
        "chance": round((variants - 1) / (len(labels) - 1), 3),
        "baseline": {k: round(_agreement(names, np.asarray(old), k), 3) for k in KS},
        "learned": {k: round(_agreement(names, np.asarray(new), k), 3) for k in KS},
        "learned_and_features": {k: round(_agreement(names, both, k), 3) for k in KS},
        "model_s_per_track": round(model_s / len(labels), 3),
        "model_s_per_audio_minute": round(model_s / minutes, 3),
    }


def similarity_table(result: dict[str, Any]) -> str:
    base, learned, both = result["baseline"], result["learned"], result["learned_and_features"]
    rows = [
        (
            f"same-style nearest neighbour ({result['tracks']} FluidR3 renders, "
            f"{result['styles']} styles)",
            f"learned {learned[1]:.0%} / features {base[1]:.0%} / both {both[1]:.0%}",
            f"learned > features: {verdict(learned[1] > base[1])}",
        ),
        (
            "same-style share of 5 nearest neighbours",
            f"learned {learned[5]:.0%} / features {base[5]:.0%} / both {both[5]:.0%} "
            f"(chance {result['chance']:.0%})",
            f"learned > features: {verdict(learned[5] > base[5])}",
        ),
        (
            f"both models, {result['patches']} patches, one thread: CPU per track",
            f"{result['model_s_per_track']} s (fixed: does not grow with track length)",
            "—",
        ),
    ]
    return markdown_table(("measurement", "value", "target"), rows)
