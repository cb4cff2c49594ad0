"""Labelled General-MIDI renders in distinct styles, for the tag and similarity tests and the
similarity-quality benchmark.

Each style is an arrangement (instruments, tempo range, note density, register) played from a
seeded random walk through a key, and rendered with tinysoundfont and the TimGM6mb SoundFont
shipped inside pretty-midi. Variants of one style differ in tempo, key, melody, velocities and
level (peak −22 to −1 dBFS); different styles differ in what a listener would call the style.
The audio is real sampled instruments, not the models' training data, so agreement of nearest
neighbours with the style label is a fair, if small, similarity check.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]
DRUMS = 9  # the General MIDI percussion channel
KICK, SNARE, CLOSED_HAT, RIDE, CRASH = 36, 38, 42, 51, 49
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Part:
    """One instrument line: GM program, how it plays (role), its register and loudness."""

    program: int
    role: str  # "melody" or one of _ROLES
    octave: int
    velocity: int = 90


@dataclass(frozen=True)
class Style:
    name: str
    bpm: tuple[float, float]
    minor: bool
    parts: tuple[Part, ...]
    drums: str = ""  # "" | "rock" | "four" | "swing" | "breakbeat"


# Tempo ranges overlap on purpose: tempo alone must not tell the styles apart.
STYLES: tuple[Style, ...] = (
    Style("solo piano", (70, 130), False, (Part(0, "arpeggio", 4, 70), Part(0, "melody", 5, 80))),
    Style("drum loop", (80, 140), False, (), drums="breakbeat"),
    Style("string ensemble", (60, 120), True, (Part(48, "pad", 4, 85), Part(48, "melody", 5, 80))),
    Style(
        "rock band",
        (90, 150),
        False,
        (Part(30, "power", 3, 110), Part(33, "bass", 2, 100)),
        drums="rock",
    ),
    Style(
        "techno",
        (90, 150),
        True,
        (Part(38, "bass", 2, 110), Part(81, "arpeggio", 4, 80)),
        drums="four",
    ),
    Style("flute solo", (70, 130), False, (Part(73, "melody", 5, 95), Part(46, "arpeggio", 3, 60))),
    Style("choir", (60, 120), True, (Part(52, "pad", 4, 95),)),
    Style(
        "jazz trio",
        (90, 150),
        False,
        (Part(32, "walking", 2, 100), Part(0, "chords", 4, 75)),
        drums="swing",
    ),
    Style(
        "nylon guitar", (70, 130), True, (Part(24, "arpeggio", 3, 90), Part(24, "melody", 4, 85))
    ),
    Style("church organ", (60, 120), False, (Part(19, "pad", 3, 90), Part(19, "melody", 5, 80))),
    Style("brass", (80, 140), False, (Part(61, "chords", 3, 100), Part(56, "melody", 4, 100))),
    Style("mallets", (70, 130), False, (Part(12, "arpeggio", 4, 90), Part(11, "melody", 5, 85))),
)


def soundfont() -> Path:
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pretty-midi (which ships TimGM6mb.sf2) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


Note = tuple[float, int, int, int, float]  # start s, channel, key, velocity, duration s
Key = tuple[int, tuple[int, ...]]  # tonic pitch class, scale steps


def _scale_note(tonic: int, scale: tuple[int, ...], degree: int, octave: int) -> int:
    return 12 * (octave + 1) + tonic + scale[degree % 7] + 12 * (degree // 7)


Hit = tuple[float, int, float]  # beat within the bar, scale degree, length in beats

# The fixed rhythm of each accompanying role, given the bar's chord (root, third, fifth degrees).
_ROLES: dict[str, Callable[[tuple[int, int, int]], list[Hit]]] = {
    "pad": lambda chord: [(0.0, d, 4.0) for d in chord],
    "chords": lambda chord: [(hit, d, 1.0) for hit in (0.0, 1.5, 2.5) for d in chord],
    "power": lambda chord: [(i / 2, d, 0.5) for i in range(8) for d in (chord[0], chord[2])],
    "arpeggio": lambda chord: [(i / 2, chord[i % 3] + 7 * (i // 6), 0.5) for i in range(8)],
    "bass": lambda chord: [(i / 2, chord[0], 0.45) for i in range(8)],
    "walking": lambda chord: [(i, chord[0] + (0, 2, 4, 5)[i], 1.0) for i in range(4)],
}


def _melody(rng: random.Random, degree: int) -> tuple[list[Hit], int]:
    """One bar of a random walk, mostly quarter and half notes; returns the last degree too."""
    hits: list[Hit] = []
    t = 0.0
    while t < 4:
        length = rng.choice((0.5, 1.0, 1.0, 2.0))
        degree = max(-3, min(10, degree + rng.choice((-2, -1, -1, 1, 1, 2))))
        hits.append((t, degree, length))
        t += length
    return hits, degree


def _part_notes(
    part: Part, channel: int, timing: tuple[float, int], key: Key, rng: random.Random
) -> list[Note]:
    """The notes of one part over `timing` = (beat length s, bars) in `key` (tonic, scale)."""
    beat, bars = timing
    tonic, scale = key
    notes: list[Note] = []
    progression = (0, 5, 3, 4) if rng.random() < 0.5 else (0, 3, 4, 0)
    degree = rng.randrange(7)
    for bar in range(bars):
        root = progression[bar % 4]
        if part.role == "melody":
            hits, degree = _melody(rng, degree)
        else:
            hits = _ROLES[part.role]((root, root + 2, root + 4))
        for beats, hit_degree, length in hits:
            velocity = max(1, min(127, part.velocity + rng.randint(-10, 10)))
            pitch = _scale_note(tonic, scale, hit_degree, part.octave)
            start = (bar * 4 + beats) * beat
            notes.append((start, channel, pitch, velocity, length * beat))
    return notes


def _drum_notes(kind: str, beat: float, bars: int, rng: random.Random) -> list[Note]:
    patterns: dict[str, list[tuple[float, int]]] = {
        "rock": [(0.0, KICK), (2.0, KICK), (1.0, SNARE), (3.0, SNARE)]
        + [(i / 2, CLOSED_HAT) for i in range(8)],
        "four": [(float(i), KICK) for i in range(4)]
        + [(i + 0.5, CLOSED_HAT) for i in range(4)]
        + [(1.0, SNARE), (3.0, SNARE)],
        "swing": [(float(i), RIDE) for i in range(4)]
        + [(i + 2 / 3, RIDE) for i in (1, 3)]
        + [(1.0, 44), (3.0, 44)],
        "breakbeat": [(0.0, KICK), (1.5, KICK), (2.5, KICK), (1.0, SNARE), (3.0, SNARE)]
        + [(3.75, SNARE)]
        + [(i / 4, CLOSED_HAT) for i in range(16)],
    }
    pattern = patterns[kind]
    notes: list[Note] = []
    for bar in range(bars):
        for when, key in pattern:
            velocity = max(1, min(127, 100 + rng.randint(-20, 15)))
            notes.append((bar * 4 * beat + when * beat, DRUMS, key, velocity, 0.2))
        if bar % 4 == 0 and kind in ("rock", "four"):
            notes.append((bar * 4 * beat, DRUMS, CRASH, 100, 0.5))
    return notes


def render_style(style: Style, seed: int, seconds: float, sample_rate: int = 22050) -> Audio:
    """Mono float32 audio of `style`, variant `seed` (tempo, key, melody, velocities, level)."""
    import tinysoundfont  # noqa: PLC0415 - test/bench-only dependency

    rng = random.Random(f"{style.name}:{seed}")
    bpm = rng.uniform(*style.bpm)
    beat = 60.0 / bpm
    tonic = rng.randrange(12)
    scale = _MINOR if style.minor else _MAJOR
    bars = int(seconds / (4 * beat)) + 1
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont()))
    notes: list[Note] = []
    for channel, part in enumerate(style.parts):
        synth.program_select(channel, sfid, 0, part.program)
        notes += _part_notes(part, channel, (beat, bars), (tonic, scale), rng)
    if style.drums:
        synth.program_select(DRUMS, sfid, 128, 0, is_drums=True)
        notes += _drum_notes(style.drums, beat, bars, rng)
    events = sorted(
        [(start, 1, ch, key, vel) for start, ch, key, vel, _ in notes]
        + [(start + length, 0, ch, key, 0) for start, ch, key, _, length in notes]
    )
    total = int(seconds * sample_rate)
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0

    def render_until(end: int) -> None:
        nonlocal position
        if end > position:
            block = np.frombuffer(synth.generate(end - position), np.float32)
            out[position:end] = block.reshape(-1, 2)
            position = end

    for when, on, channel, key, velocity in events:
        render_until(min(total, int(when * sample_rate)))
        if position >= total:
            break
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    render_until(total)
    mono = out.mean(axis=1)
    peak = float(np.max(np.abs(mono))) or 1.0
    level = rng.uniform(0.08, 0.9)  # peak -22 to -1 dBFS: libraries are mastered at many levels
    audio: Audio = (mono * (level / peak)).astype(np.float32)
    return audio
