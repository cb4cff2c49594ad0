"""Deterministic musical test audio with a known tempo and key.

Tests and the benchmark need real-sounding music whose answer is known in advance, without
shipping audio files. A track here is a four-bar loop in 4/4: a diatonic cadence (I–IV–V–I in
major, i–iv–V–i in harmonic minor) struck on every beat, a bass on the chord roots, an
arpeggiated scale melody and, optionally, a four-on-the-floor drum kit with snare on 2 and 4 and
quiet off-beat hats. Every pitched note and every kick starts on a beat (the kick has a click
attack, so plain beats read nearly as strongly as the back-beat), so the tempo is unambiguous
with or without drums, and the cadence names its tonic and mode.

Rendering is event-based: each distinct sound (a chord, a bass note, a drum hit) is synthesised
once and added at every onset, so a three-minute track renders in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from schemas.payloads import KEY_NAMES, MODES

Audio = npt.NDArray[np.float32]

PEAK_DBFS = -1.0
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_HARMONIC_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 11)
_PROGRESSION = (0, 3, 4, 0)  # scale degrees of the bar chords: I IV V I / i iv V i
# Melody, in scale degrees (0 = tonic, 7 = the octave), one per beat of each bar.
_MELODY = ((4, 2, 1, 2), (3, 5, 7, 5), (6, 4, 1, 6), (7, 4, 2, 0))
_CHORD_PARTIALS = (1.0, 0.5, 0.3, 0.15)
_BASS_PARTIALS = (1.0, 0.6, 0.3)
_MELODY_PARTIALS = (1.0, 0.25)
_ACCENTS = (1.0, 0.8, 0.9, 0.8)  # chord strike level per beat of the bar
# (left, right) gains per part when rendering stereo; mono uses their mean.
_PANS = {"drums": (1.0, 1.0), "bass": (1.0, 1.0), "chords": (1.2, 0.8), "melody": (0.8, 1.2)}


def render_track(
    *,
    bpm: float,
    key: str,
    mode: str,
    seconds: float,
    sample_rate: int = 44100,
    drums: bool = True,
    bass: bool = True,
    melody: bool = True,
    seed: int = 0,
    stereo: bool = False,
    tuning_cents: float = 0.0,
) -> Audio:
    """Render a track; float32 with peak at -1 dBFS, shape (n,) or (n, 2) when stereo.

    `seed` varies the drum noise and note velocities only, never the timing or the pitches.
    `tuning_cents` detunes every pitched part from A = 440 Hz.
    """
    if key not in KEY_NAMES:
        raise ValueError(f"unknown key {key!r}; expected one of {KEY_NAMES}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if bpm <= 0 or seconds <= 0:
        raise ValueError("bpm and seconds must be positive")

    rng = np.random.default_rng(seed)
    mix = _Mix(round(seconds * sample_rate), stereo)
    beat_s = 60.0 / bpm
    n_beats = int(np.ceil(seconds / beat_s))
    scale = _MAJOR_SCALE if mode == "major" else _HARMONIC_MINOR_SCALE
    # Tonic between A3 and G#4 so chords sit in the register where chroma is clearest.
    tonic = 57 + (KEY_NAMES.index(key) - 9) % 12
    freq = _Pitch(tuning_cents)
    beat_len = round(beat_s * sample_rate)
    sounds = _Sounds(sample_rate, beat_len, rng)

    for n in range(n_beats):
        start = round(n * beat_s * sample_rate)
        degree = _PROGRESSION[(n // 4) % len(_PROGRESSION)]
        beat_in_bar = n % 4
        gain = _ACCENTS[beat_in_bar] * rng.uniform(0.92, 1.0)
        chord = tuple(_degree_pitch(tonic, scale, degree + step) for step in (0, 2, 4))
        mix.add("chords", sounds.tone(chord, freq, _CHORD_PARTIALS, 0.35), start, 0.30 * gain)
        if bass:
            root = _degree_pitch(tonic - 24, scale, degree)
            mix.add("bass", sounds.tone((root,), freq, _BASS_PARTIALS, 0.5), start, 0.45 * gain)
        if melody:
            step = _MELODY[(n // 4) % len(_MELODY)][beat_in_bar]
            note = _degree_pitch(tonic + 12, scale, step)
            mix.add("melody", sounds.tone((note,), freq, _MELODY_PARTIALS, 0.6), start, 0.25 * gain)
        if drums:
            mix.add("drums", sounds.kick, start, 0.9 * gain)
            if beat_in_bar in (1, 3):
                mix.add("drums", sounds.snare, start, 0.5 * gain)
            mix.add("drums", sounds.hat, start + beat_len // 2, 0.12 * gain)
    return mix.normalised()


def write_track(
    path: str | Path,
    *,
    format: str = "WAV",
    subtype: str | None = None,
    sample_rate: int = 44100,
    **render_kwargs: Any,
) -> Path:
    """Render a track (see render_track) and write it with soundfile: WAV, FLAC or OGG."""
    audio = render_track(sample_rate=sample_rate, **render_kwargs)
    out = Path(path)
    sf.write(out, audio, sample_rate, format=format, subtype=subtype)
    return out


def _degree_pitch(tonic: int, scale: tuple[int, ...], degree: int) -> int:
    """MIDI pitch of a scale degree counted from `tonic`; degrees past 6 climb octaves."""
    octave, index = divmod(degree, len(scale))
    return tonic + 12 * octave + scale[index]


class _Pitch:
    """MIDI pitch → Hz under a tuning offset."""

    def __init__(self, cents: float) -> None:
        self.a4 = 440.0 * 2.0 ** (cents / 1200.0)

    def __call__(self, midi: int) -> float:
        return float(self.a4 * 2.0 ** ((midi - 69) / 12.0))


class _Sounds:
    """Each distinct sound of one track, synthesised once."""

    def __init__(self, sample_rate: int, beat_len: int, rng: np.random.Generator) -> None:
        self.rate = sample_rate
        self.beat_len = beat_len
        self._tones: dict[tuple[tuple[int, ...], tuple[float, ...]], Audio] = {}
        self.kick = self._kick(rng)
        self.snare = self._snare(rng)
        self.hat = self._hat(rng)

    def _time(self, seconds: float) -> npt.NDArray[np.float64]:
        return np.arange(round(seconds * self.rate)) / self.rate

    def tone(
        self,
        pitches: tuple[int, ...],
        freq: _Pitch,
        partials: tuple[float, ...],
        decay_beats: float,
    ) -> Audio:
        """Harmonic notes lasting one beat, decaying exponentially, with a click-free release."""
        cache_key = (pitches, (*partials, decay_beats))
        if cache_key not in self._tones:
            t = np.arange(self.beat_len) / self.rate
            wave = np.zeros(self.beat_len)
            for pitch in pitches:
                f0 = freq(pitch)
                for k, amp in enumerate(partials, start=1):
                    if k * f0 < 0.45 * self.rate:
                        wave += amp * np.sin(2 * np.pi * k * f0 * t)
            envelope = np.exp(-t / (decay_beats * self.beat_len / self.rate))
            envelope *= _fades(self.beat_len, round(0.004 * self.rate))
            self._tones[cache_key] = (wave * envelope / len(pitches)).astype(np.float32)
        return self._tones[cache_key]

    def _kick(self, rng: np.random.Generator) -> Audio:
        t = self._time(0.3)
        sweep = 45.0 + 75.0 * np.exp(-t / 0.04)
        phase = 2 * np.pi * np.cumsum(sweep) / self.rate
        body = np.sin(phase) * np.exp(-t / 0.12)
        click = rng.standard_normal(t.size) * np.exp(-t / 0.004)
        wave = (body + 0.3 * click) * _fades(t.size, round(0.002 * self.rate))
        return wave.astype(np.float32)

    def _snare(self, rng: np.random.Generator) -> Audio:
        t = self._time(0.2)
        noise = np.diff(rng.standard_normal(t.size + 1)) * 0.5
        body = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
        wave = (noise * np.exp(-t / 0.06) + 0.6 * body) * _fades(t.size, 8)
        return wave.astype(np.float32)

    def _hat(self, rng: np.random.Generator) -> Audio:
        t = self._time(0.05)
        noise = np.diff(rng.standard_normal(t.size + 2), n=2) * 0.3
        return (noise * np.exp(-t / 0.012) * _fades(t.size, 4)).astype(np.float32)


def _fades(length: int, ramp: int) -> npt.NDArray[np.float64]:
    """A gain curve with linear fade-in and fade-out of `ramp` samples (no clicks)."""
    gain = np.ones(length)
    ramp = max(1, min(ramp, length // 2))
    gain[:ramp] = np.linspace(0.0, 1.0, ramp, endpoint=False)
    gain[length - ramp :] = np.linspace(1.0, 0.0, ramp)
    return gain


class _Mix:
    """The output buffer; parts are panned when stereo."""

    def __init__(self, length: int, stereo: bool) -> None:
        self.stereo = stereo
        self.out = np.zeros((length, 2) if stereo else length, dtype=np.float32)

    def add(self, part: str, sound: Audio, start: int, gain: float) -> None:
        stop = min(start + sound.size, self.out.shape[0])
        if stop <= start:
            return
        piece = sound[: stop - start]
        left, right = _PANS[part]
        if self.stereo:
            self.out[start:stop, 0] += piece * np.float32(gain * left)
            self.out[start:stop, 1] += piece * np.float32(gain * right)
        else:
            self.out[start:stop] += piece * np.float32(gain * (left + right) / 2)

    def normalised(self) -> Audio:
        peak = float(np.max(np.abs(self.out))) if self.out.size else 0.0
        if peak > 0:
            self.out *= np.float32(10 ** (PEAK_DBFS / 20) / peak)
        return self.out
