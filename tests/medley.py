"""Distinct, non-repeating generated recordings for fingerprint tests and the benchmark.

A `tests.synth` track is a four-bar loop: a clip of it is found at every repetition, so "where in
the track is this clip" has no single answer, and two tracks in the same key and tempo differ only
in drum noise. A medley strings short sections of such tracks — each with its own tempo, key,
mode, arrangement and seed, entered at a random point of its loop and shorter than one loop — so
every few seconds of a medley occur once, in it alone, as in real music. Noise and the
"phone in a noisy room" degradations are here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import signal

from handlers.decode.core import decode_to_analysis, read_analysis
from schemas.payloads import KEY_NAMES, MODES
from tests.encode import FORMATS, SUFFIX, encode
from tests.synth import render_track

Audio = npt.NDArray[np.float32]


def render_medley(seed: int, seconds: float, sample_rate: int = 22050) -> Audio:
    """A mono recording of `seconds` made of 2.5–6 s sections drawn from `seed`; peak 0.9."""
    rng = np.random.default_rng([seed, 7919])
    parts: list[Audio] = []
    total = round(seconds * sample_rate)
    have = 0
    while have < total:
        bpm = float(rng.uniform(70.0, 170.0))
        length = float(rng.uniform(2.5, 6.0))
        enter = float(rng.uniform(0.0, 4 * 4 * 60.0 / bpm))  # anywhere in the four-bar loop
        audio = render_track(
            bpm=bpm,
            key=str(rng.choice(KEY_NAMES)),
            mode=str(rng.choice(MODES)),
            seconds=enter + length,
            sample_rate=sample_rate,
            drums=bool(rng.random() < 0.7),
            bass=bool(rng.random() < 0.8),
            melody=bool(rng.random() < 0.8),
            seed=int(rng.integers(1 << 30)),
            tuning_cents=float(rng.uniform(-30.0, 30.0)),
        )
        part = audio[round(enter * sample_rate) :] * np.float32(rng.uniform(0.5, 1.0))
        parts.append(part)
        have += part.size
    out = np.concatenate(parts)[:total]
    return (out * np.float32(0.9 / max(1e-9, float(np.max(np.abs(out)))))).astype(np.float32)


def pink_noise(size: int, rng: np.random.Generator) -> Audio:
    """Unit-RMS pink (1/f power) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(size))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, n=size)
    unit: Audio = (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
    return unit


def with_noise(audio: Audio, snr_db: float, rng: np.random.Generator) -> Audio:
    """Add pink noise `snr_db` below the audio's RMS, as a room would; rescaled if it would clip."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    mixed = audio + pink_noise(audio.size, rng) * np.float32(rms * 10 ** (-snr_db / 20))
    return (mixed / max(1.0, float(np.max(np.abs(mixed))) / 0.99)).astype(np.float32)


@dataclass(frozen=True)
class Encoding:
    """A lossy encode: `kind` (a tests.encode FORMATS key) at `bit_rate` b/s and `rate` Hz."""

    kind: str
    bit_rate: int
    rate: int


def reencoded(audio: Audio, sample_rate: int, encoding: Encoding, scratch: Path) -> Audio:
    """`audio` resampled to `encoding.rate`, encoded and decoded back by the decode stage's own
    code to `sample_rate`: what a phone recording or a re-encoded file goes through."""
    kind, rate = encoding.kind, encoding.rate
    g = gcd(rate, sample_rate)
    resampled = signal.resample_poly(audio, rate // g, sample_rate // g).astype(np.float32)
    resampled /= max(1.0, float(np.max(np.abs(resampled))) / 0.99)
    src = scratch / f"clip{SUFFIX[FORMATS[kind][0]]}"
    dst = scratch / "clip.flac"
    encode(src, resampled[None, :], rate, kind, bit_rate=encoding.bit_rate)
    decode_to_analysis(str(src), str(dst), target_rate=sample_rate)
    out, _ = read_analysis(str(dst))
    src.unlink()
    dst.unlink()
    return out
