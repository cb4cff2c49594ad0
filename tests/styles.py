"""Labelled General-MIDI renders in distinct styles, for the tag and similarity tests and the
similarity-quality benchmark.

Each style is an arrangement (instruments, tempo range, note density, register) played from a
seeded random walk through a key, and rendered with tinysoundfont and the TimGM6mb SoundFont
shipped inside pretty-midi. Variants of one style differ in tempo, key, melody and velocities;
different styles differ in what a listener would call the style. The audio is real sampled
instruments, not the models' training data, so agreement of nearest neighbours with the style
label is a fair, if small, similarity check.
"""

from __future__ import annotations

import importlib.util
import random
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
    role: str  # "chords" | "arpeggio" | "melody" | "bass" | "walking" | "pad" | "power"
    octave: int
    velocity: int = 90


@dataclass(frozen=True)
class Style:
    name: str
    bpm: tuple[float, float]
    minor: bool
    parts: tuple[Part, ...]
    drums: str = ""  # "" | "rock" | "four" | "swing" | "breakbeat"


STYLES: tuple[Style, ...] = (
    Style("solo piano", (66, 84), False, (Part(0, "arpeggio", 4, 70), Part(0, "melody", 5, 80))),
    Style("drum loop", (96, 124), False, (), drums="breakbeat"),
    Style("string ensemble", (56, 72), True, (Part(48, "pad", 4, 85), Part(48, "melody", 5, 80))),
    Style(
        "rock band",
        (120, 144),
        False,
        (Part(30, "power", 3, 110), Part(33, "bass", 2, 100)),
        drums="rock",
    ),
    Style(
        "techno",
        (124, 132),
        True,
        (Part(38, "bass", 2, 110), Part(81, "arpeggio", 4, 80)),
        drums="four",
    ),
    Style("flute solo", (80, 100), False, (Part(73, "melody", 5, 95), Part(46, "arpeggio", 3, 60))),
    Style("choir", (50, 66), True, (Part(52, "pad", 4, 95),)),
    Style(
        "jazz trio",
        (130, 160),
        False,
        (Part(32, "walking", 2, 100), Part(0, "chords", 4, 75)),
        drums="swing",
    ),
)


def soundfont() -> Path:
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pretty-midi (which ships TimGM6mb.sf2) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


Note = tuple[float, int, int, int, float]  # start s, channel, key, velocity, duration s


def _scale_note(tonic: int, scale: tuple[int, ...], degree: int, octave: int) -> int:
    return 12 * (octave + 1) + tonic + scale[degree % 7] + 12 * (degree // 7)


def _part_notes(part: Part, channel: int, beat: float, bars: int, tonic: int,
                scale: tuple[int, ...], rng: random.Random) -> list[Note]:  # fmt: skip
    notes: list[Note] = []
    progression = (0, 5, 3, 4) if rng.random() < 0.5 else (0, 3, 4, 0)
    degree = rng.randrange(7)
    for bar in range(bars):
        root = progression[bar % 4]
        chord = [root, root + 2, root + 4]
        t0 = bar * 4 * beat
        vel = lambda: max(1, min(127, part.velocity + rng.randint(-10, 10)))  # noqa: E731
        if part.role in ("chords", "pad"):
            hits = (0.0,) if part.role == "pad" else (0.0, 1.5, 2.5)
            for hit in hits:
                length = 4 * beat if part.role == "pad" else beat
                notes += [(t0 + hit * beat, channel, _scale_note(tonic, scale, d, part.octave),
                           vel(), length) for d in chord]  # fmt: skip
        elif part.role == "power":
            for eighth in range(8):
                key = _scale_note(tonic, scale, root, part.octave)
                notes += [(t0 + eighth * beat / 2, channel, k, vel(), beat / 2) for k in (key, key + 7)]
        elif part.role == "arpeggio":
            for step in range(8):
                d = chord[step % 3] + 7 * (step // 6)
                notes.append((t0 + step * beat / 2, channel,
                              _scale_note(tonic, scale, d, part.octave), vel(), beat / 2))  # fmt: skip
        elif part.role == "bass":
            for eighth in range(8):
                notes.append((t0 + eighth * beat / 2, channel,
                              _scale_note(tonic, scale, root, part.octave), vel(), beat / 2.2))  # fmt: skip
        elif part.role == "walking":
            for step in range(4):
                d = root + (0, 2, 4, 5)[step]
                notes.append((t0 + step * beat, channel,
                              _scale_note(tonic, scale, d, part.octave), vel(), beat))  # fmt: skip
        else:  # melody: a random walk, mostly quarter and half notes
            t = 0.0
            while t < 4:
                length = rng.choice((0.5, 1.0, 1.0, 2.0))
                degree = max(-3, min(10, degree + rng.choice((-2, -1, -1, 1, 1, 2))))
                notes.append((t0 + t * beat, channel,
                              _scale_note(tonic, scale, degree, part.octave), vel(), length * beat))  # fmt: skip
                t += length
    return notes


def _drum_notes(kind: str, beat: float, bars: int, rng: random.Random) -> list[Note]:
    pattern: dict[str, list[tuple[float, int]]] = {
        "rock": [(0, KICK), (2, KICK), (1, SNARE), (3, SNARE)]
        + [(i / 2, CLOSED_HAT) for i in range(8)],
        "four": [(i, KICK) for i in range(4)] + [(i + 0.5, CLOSED_HAT) for i in range(4)]
        + [(1, SNARE), (3, SNARE)],
        "swing": [(i, RIDE) for i in range(4)] + [(i + 2 / 3, RIDE) for i in (1, 3)]
        + [(1, 44), (3, 44)],
        "breakbeat": [(0, KICK), (1.5, KICK), (2.5, KICK), (1, SNARE), (3, SNARE), (3.75, SNARE)]
        + [(i / 4, CLOSED_HAT) for i in range(16)],
    }[kind]
    notes: list[Note] = []
    for bar in range(bars):
        for when, key in pattern:
            velocity = max(1, min(127, 100 + rng.randint(-20, 15)))
            notes.append((bar * 4 * beat + when * beat, DRUMS, key, velocity, 0.2))
        if bar % 4 == 0 and kind in ("rock", "four"):
            notes.append((bar * 4 * beat, DRUMS, CRASH, 100, 0.5))
    return notes


def render_style(style: Style, seed: int, seconds: float, sample_rate: int = 22050) -> Audio:
    """Mono float32 audio of `style`, variant `seed` (tempo, key, melody, velocities)."""
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
        notes += _part_notes(part, channel, beat, bars, tonic, scale, rng)
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
    for when, on, channel, key, velocity in events:
        at = min(total, int(when * sample_rate))
        if at > position:
            out[position:at] = np.frombuffer(synth.generate(at - position), np.float32).reshape(-1, 2)
            position = at
        if position >= total:
            break
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    if position < total:
        out[position:] = np.frombuffer(synth.generate(total - position), np.float32).reshape(-1, 2)
    mono = out.mean(axis=1)
    peak = float(np.max(np.abs(mono))) or 1.0
    return (mono * (0.7 / peak)).astype(np.float32)
