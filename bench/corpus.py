"""An independent labelled corpus for tempo and key: General MIDI arrangements through real SF2s.

tests/synth.py is the generator the analysis was developed on, so its set cannot show how the
estimators fare on music they were not shaped by. This corpus is different in every part that
matters: pieces are built as MIDI (pretty-midi) and rendered by a sampled General MIDI synth
(tinysoundfont, in process) through real SoundFont banks; the grooves are the ones that fool
tempo estimators (half-time, double-time hats, syncopation, breakbeats, swing, 3/4, 6/8,
drumless arpeggios, sparse intros); minor keys use natural, harmonic and relative-major-heavy
progressions (i–VI–III–VII, i–iv–VII–III, …). Keys cover all 24, tempi 60–180 BPM (6/8: 60–120),
tunings up to ±40 cents, and files are WAV, FLAC, MP3 or OGG Vorbis encoded with PyAV.

Labels follow the MIREX/GTZAN convention: the tempo is the tactus a listener taps — the quarter
note in 4/4 and 3/4 (also under a half-time backbeat or double-time hats), the dotted quarter in
6/8, the swung quarter in a shuffle. The key is the tonic and mode of the progression (no key
changes).

Two splits that share no seed, no soundfont and no arrangement set:
* TUNING — the estimators' constants may be fitted on it: TimGM6mb (shipped by pretty-midi),
  instrument palette A and grooves drawn at random within each family (`randomised`; variant A
  of GROOVES before), so a fitted model learns the families, not one pattern.
* VALIDATION — never used for tuning: FluidR3_GM (Debian `fluid-soundfont-gm`), palette B and
  groove variants B. Without that soundfont the split cannot be made and the bench says so.
Renders are cached under bench/cache/ (git-ignored), keyed by everything that shapes them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pretty_midi
import tinysoundfont

from schemas.payloads import KEY_NAMES, MODES

CORPUS_VERSION = 2  # 2: vi–IV–V–I replaces vi–IV–I–V (see PROGRESSIONS)
CACHE = Path(__file__).parent / "cache"
FORMATS = ("wav", "flac", "mp3", "ogg")
SAMPLE_RATES = (44100, 48000)
MIN_BPM, MAX_BPM = 60.0, 180.0
COMPOUND_MAX_BPM = 120.0  # a 6/8 dotted quarter above this is rarely what a listener taps
MAX_TUNING_CENTS = 40.0
FLUID_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)
FLUID_HINT = "install Debian's fluid-soundfont-gm (apt-get install fluid-soundfont-gm)"
_CODECS = {"wav": "pcm_s16le", "flac": "flac", "mp3": "libmp3lame", "ogg": "vorbis"}
_DRUM_CHANNEL = 9
_CHORDS, _BASS, _LEAD, _DRUMS = range(4)  # part order in the MIDI
_PANS = (40, 64, 88)  # chords left, bass centre, lead right
_KICK, _SNARE, _CLAP, _HAT, _OPEN_HAT, _RIDE, _SIDE_STICK = 36, 38, 39, 42, 46, 51, 37


@dataclass(frozen=True)
class Groove:
    """A drum pattern on a step grid; `beat_steps` steps make one tactus beat."""

    beats_per_bar: int
    beat_steps: int
    numerator: int  # the notated time signature
    denominator: int
    kick: tuple[int, ...]
    snare: tuple[int, ...]
    hats: tuple[int, ...]
    hat_note: int = _HAT
    bass: tuple[int, ...] = (0,)  # bass-note steps within the bar
    comp: tuple[int, ...] = ()  # chord strikes; empty = one held chord per bar
    arpeggio: int = 0  # steps between arpeggio notes; 0 = no arpeggio
    intro_bars: int = 0  # bars of held chords only before the groove starts
    drums: bool = True


# Two variants of every groove: B for validation, A for the similarity bench's styles.
GROOVES: dict[str, tuple[Groove, Groove]] = {
    "four on the floor": (
        Groove(4, 4, 4, 4, kick=(0, 4, 8, 12), snare=(4, 12), hats=(2, 6, 10, 14),
               hat_note=_OPEN_HAT, bass=(0, 6, 8, 14), comp=(2, 6, 10, 14)),
        Groove(4, 4, 4, 4, kick=(0, 4, 8, 12), snare=(4, 12), hats=tuple(range(0, 16, 2)),
               bass=(0, 3, 8, 11), comp=(0, 8)),
    ),
    "half-time": (
        Groove(4, 4, 4, 4, kick=(0, 10), snare=(8,), hats=tuple(range(0, 16, 2)),
               bass=(0, 10), comp=()),
        Groove(4, 4, 4, 4, kick=(0, 3, 11), snare=(8,), hats=(0, 4, 8, 12), hat_note=_RIDE,
               bass=(0, 11), comp=(0, 8)),
    ),
    "double-time hats": (
        Groove(4, 4, 4, 4, kick=(0, 8, 10), snare=(4, 12), hats=tuple(range(16)),
               bass=(0, 8, 10), comp=(0, 6, 12)),
        Groove(4, 4, 4, 4, kick=(0, 7, 8), snare=(4, 12), hats=tuple(range(16)),
               hat_note=_RIDE, bass=(0, 7), comp=()),
    ),
    "syncopated": (
        Groove(4, 4, 4, 4, kick=(0, 6, 10), snare=(4, 12), hats=tuple(range(0, 16, 2)),
               bass=(0, 6, 10), comp=(3, 6, 11, 14)),
        Groove(4, 4, 4, 4, kick=(0, 3, 10, 14), snare=(4, 12), hats=tuple(range(0, 16, 2)),
               bass=(0, 3, 10), comp=(2, 7, 10)),
    ),
    "breakbeat": (
        Groove(4, 4, 4, 4, kick=(0, 2, 10), snare=(4, 7, 12, 15), hats=tuple(range(0, 16, 2)),
               bass=(0, 2, 10), comp=(0, 10)),
        Groove(4, 4, 4, 4, kick=(0, 10, 11), snare=(4, 9, 12), hats=tuple(range(0, 16, 2)),
               hat_note=_RIDE, bass=(0, 10), comp=(4, 12)),
    ),
    "shuffle": (
        Groove(4, 3, 4, 4, kick=(0, 6), snare=(3, 9), hats=(0, 2, 3, 5, 6, 8, 9, 11),
               bass=(0, 3, 6, 9), comp=(2, 5, 8, 11)),
        Groove(4, 3, 4, 4, kick=(0, 5, 6), snare=(3, 9), hats=(0, 2, 3, 5, 6, 8, 9, 11),
               hat_note=_RIDE, bass=(0, 5, 6, 11), comp=(0, 6)),
    ),
    "waltz 3/4": (
        Groove(3, 4, 3, 4, kick=(0,), snare=(4, 8), hats=tuple(range(0, 12, 2)),
               bass=(0,), comp=(4, 8)),
        Groove(3, 4, 3, 4, kick=(0, 10), snare=(4, 8), hats=(0, 4, 8), hat_note=_SIDE_STICK,
               bass=(0, 8), comp=(4, 8)),
    ),
    "compound 6/8": (
        Groove(2, 6, 6, 8, kick=(0,), snare=(6,), hats=tuple(range(0, 12, 2)),
               bass=(0, 6), comp=(2, 4, 8, 10)),
        Groove(2, 6, 6, 8, kick=(0, 10), snare=(6,), hats=tuple(range(0, 12, 2)),
               hat_note=_RIDE, bass=(0, 4, 6), comp=()),
    ),
    "drumless arpeggio": (
        Groove(4, 4, 4, 4, kick=(), snare=(), hats=(), bass=(0, 8), arpeggio=2, drums=False),
        Groove(4, 4, 4, 4, kick=(), snare=(), hats=(), bass=(0,), arpeggio=1, drums=False),
    ),
    "sparse intro": (
        Groove(4, 4, 4, 4, kick=(0, 4, 8, 12), snare=(4, 12), hats=tuple(range(0, 16, 2)),
               bass=(0, 8), comp=(0, 8), intro_bars=4),
        Groove(4, 4, 4, 4, kick=(0, 6, 8), snare=(4, 12), hats=tuple(range(0, 16, 2)),
               bass=(0, 6, 8), comp=(), intro_bars=4),
    ),
}  # fmt: skip

_TAMBOURINE, _MARACAS = 54, 70
_PULSE_NOTES = (_HAT, _OPEN_HAT, _RIDE, _SIDE_STICK, _TAMBOURINE, _MARACAS)


def _some(rng: np.random.Generator, steps: tuple[int, ...], most: int) -> tuple[int, ...]:
    """Up to `most` of `steps`, at random (maybe none)."""
    count = int(rng.integers(0, min(most, len(steps)) + 1))
    return tuple(sorted(int(s) for s in rng.choice(steps, size=count, replace=False)))


def _straight(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """Four on the floor (a kick on every beat) or a sparse intro (held chords first)."""
    intro = family == "sparse intro"
    kick = tuple(sorted((0, 8, *_some(rng, (6, 10, 14), 2)))) if intro else (0, 4, 8, 12)
    hats = (tuple(range(2, 16, 4)), tuple(range(0, 16, 2)), tuple(range(16)))[rng.integers(3)]
    return Groove(4, 4, 4, 4, kick=kick, snare=(4, 12), hats=hats, hat_note=pulse,
                  bass=(0, *_some(rng, (3, 6, 8, 10, 11, 14), 3)),
                  comp=_some(rng, (0, 2, 4, 6, 8, 10, 12, 14), 4),
                  intro_bars=int(rng.integers(2, 5)) if intro else 0)  # fmt: skip


def _half_time(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """The snare on beat 3 only."""
    hats = (tuple(range(0, 16, 4)), tuple(range(0, 16, 2)))[rng.integers(2)]
    return Groove(4, 4, 4, 4, kick=(0, *_some(rng, (3, 6, 10, 11, 14), 2)), snare=(8,),
                  hats=hats, hat_note=pulse, bass=(0, *_some(rng, (6, 10, 11), 2)),
                  comp=_some(rng, (0, 8, 12), 2))  # fmt: skip


def _backbeat(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """A backbeat under sixteenth hats, a syncopated kick, or a broken (breakbeat) snare."""
    offbeats = (2, 9, 10, 11) if family == "breakbeat" else (3, 6, 7, 10, 11, 14)
    snare = tuple(sorted((4, 12, *_some(rng, (7, 9, 15), 2)))) if family == "breakbeat" else (4, 12)
    dense = family == "double-time hats"
    kick = (0, *_some(rng, (8, *offbeats) if dense else offbeats, 3))
    hats = tuple(range(16)) if dense else tuple(range(0, 16, 2))
    return Groove(4, 4, 4, 4, kick=kick, snare=snare, hats=hats, hat_note=pulse,
                  bass=(0, *_some(rng, offbeats, 2)),
                  comp=_some(rng, (0, 2, 6, 10, 12), 3))  # fmt: skip


def _shuffle(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """Swung: three steps to the beat, the middle one silent."""
    return Groove(4, 3, 4, 4, kick=(0, *_some(rng, (5, 6, 8), 2)), snare=(3, 9),
                  hats=(0, 2, 3, 5, 6, 8, 9, 11), hat_note=pulse,
                  bass=(0, *_some(rng, (3, 5, 6, 9, 11), 3)),
                  comp=_some(rng, (0, 2, 5, 6, 8), 3))  # fmt: skip


def _waltz(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    hats = (tuple(range(0, 12, 2)), (0, 4, 8))[rng.integers(2)]
    return Groove(3, 4, 3, 4, kick=(0, *_some(rng, (6, 10), 1)), snare=(4, 8), hats=hats,
                  hat_note=pulse, bass=(0, *_some(rng, (4, 8), 1)),
                  comp=_some(rng, (4, 8), 2))  # fmt: skip


def _compound(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """6/8: two dotted-quarter beats of three eighths (six steps) each."""
    hats = (tuple(range(0, 12, 2)), (0, 6))[rng.integers(2)]
    return Groove(2, 6, 6, 8, kick=(0, *_some(rng, (4, 10), 1)), snare=(6,), hats=hats,
                  hat_note=pulse, bass=(0, *_some(rng, (4, 6, 10), 2)),
                  comp=_some(rng, (0, 2, 4, 6, 8, 10), 3))  # fmt: skip


def _drumless(family: str, rng: np.random.Generator, pulse: int) -> Groove:
    """An arpeggio in sixteenths, eighths or quarters over held chords."""
    return Groove(4, 4, 4, 4, kick=(), snare=(), hats=(), bass=(0, *_some(rng, (8,), 1)),
                  arpeggio=int(rng.choice((1, 2, 4))), drums=False)  # fmt: skip


_RANDOMISED = {
    "four on the floor": _straight,
    "half-time": _half_time,
    "double-time hats": _backbeat,
    "syncopated": _backbeat,
    "breakbeat": _backbeat,
    "shuffle": _shuffle,
    "waltz 3/4": _waltz,
    "compound 6/8": _compound,
    "drumless arpeggio": _drumless,
    "sparse intro": _straight,
}


def randomised(family: str, rng: np.random.Generator) -> Groove:
    """A groove of `family` whose parts are drawn at random around what defines the family (the
    backbeat, the half-time snare, the meter, the swing) and a random pulse instrument: the
    TUNING split's grooves, so that a fitted model learns the family rather than one pattern."""
    return _RANDOMISED[family](family, rng, int(rng.choice(_PULSE_NOTES)))


# Chord roots as scale degrees (0 = tonic) and the scale each progression draws on.
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
PROGRESSIONS: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "major": (
        ("major", (0, 4, 5, 3)),  # I–V–vi–IV
        ("major", (0, 3, 4, 0)),  # I–IV–V–I
        ("major", (0, 5, 3, 4)),  # I–vi–IV–V
        ("major", (1, 4, 0, 0)),  # ii–V–I–I
        # vi–IV–V–I (relative-minor-heavy, but it cadences on I). Version 1 had vi–IV–I–V here:
        # chord for chord the i–VI–III–VII loop of the relative minor below, so the same audio
        # carried two keys and no estimator could score it.
        ("major", (5, 3, 4, 0)),
        ("major", (0, 3, 5, 4)),  # I–IV–vi–V
    ),
    "minor": (
        ("natural minor", (0, 5, 2, 6)),  # i–VI–III–VII
        ("natural minor", (0, 3, 6, 2)),  # i–iv–VII–III
        ("natural minor", (0, 6, 5, 6)),  # i–VII–VI–VII
        ("natural minor", (0, 3, 4, 0)),  # i–iv–v–i
        ("harmonic minor", (0, 3, 4, 0)),  # i–iv–V–i
        ("harmonic minor", (0, 5, 3, 4)),  # i–VI–iv–V
        ("harmonic minor", (0, 6, 5, 4)),  # i–VII–VI–V (Andalusian, V from harmonic minor)
    ),
}

# General MIDI programs (0-based) per part; the two palettes share none.
PALETTES = {
    "A": {
        "chords": (0, 4, 16, 24, 48),  # piano, e-piano, organ, nylon guitar, strings
        "bass": (32, 33, 38),  # acoustic, finger, synth bass 1
        "lead": (73, 80, 56, 65),  # flute, square lead, trumpet, alto sax
    },
    "B": {
        "chords": (1, 5, 19, 25, 89, 61),  # bright piano, e-piano 2, church organ, steel
        # guitar, warm pad, brass section
        "bass": (34, 35, 39),  # picked, fretless, synth bass 2
        "lead": (71, 81, 40, 11),  # clarinet, saw lead, violin, vibraphone
    },
}


@dataclass(frozen=True)
class Split:
    name: str
    seed: int
    soundfont: str  # a file name looked up by find_soundfont
    variant: int | None  # index into each GROOVES pair; None: drawn at random (randomised)
    palette: str


TUNING = Split("tuning", seed=9_001, soundfont="TimGM6mb.sf2", variant=None, palette="A")
VALIDATION = Split("validation", seed=4_242, soundfont="FluidR3_GM.sf2", variant=1, palette="B")
SPLITS = {s.name: s for s in (TUNING, VALIDATION)}


@dataclass(frozen=True)
class Piece:
    """One rendered, labelled file of the corpus."""

    path: str  # relative to the split's folder
    bpm: float  # tactus beats per minute (see the module docstring)
    key: str
    mode: str
    groove: str
    meter: str
    progression: str
    programs: tuple[int, int, int]  # chords, bass, lead
    tuning_cents: float
    sample_rate: int


class MissingSoundfontError(RuntimeError):
    """A split's soundfont is not installed; the message says how to get it."""


def find_soundfont(name: str) -> Path:
    """The path of a soundfont by file name: pretty-midi's TimGM6mb or Debian's FluidR3_GM."""
    if name == "TimGM6mb.sf2":
        return Path(pretty_midi.__file__).parent / name
    for path in FLUID_PATHS:
        if path.name == name and path.exists():
            return path
    raise MissingSoundfontError(
        f"{name} not found in {[str(p) for p in FLUID_PATHS]}: {FLUID_HINT}"
    )


def soundfont_status() -> dict[str, str]:
    """Each split's soundfont: its path, or how to install it."""
    status = {}
    for split in SPLITS.values():
        try:
            status[split.soundfont] = str(find_soundfont(split.soundfont))
        except MissingSoundfontError as missing:
            status[split.soundfont] = f"missing — {missing}"
    return status


def plan(split: Split, count: int, seconds: float) -> list[tuple[Piece, pretty_midi.PrettyMIDI]]:
    """The labelled pieces of a split and their MIDI: deterministic in (split, count, seconds)."""
    rng = np.random.default_rng(split.seed)
    keys = rng.permutation(count) % (len(KEY_NAMES) * len(MODES))
    grooves = rng.permutation(count) % len(GROOVES)
    formats = rng.permutation(count) % len(FORMATS)
    positions = rng.permutation(count)
    palette = PALETTES[split.palette]
    pieces = []
    for i in range(count):
        mode_index, tonic = divmod(int(keys[i]), len(KEY_NAMES))
        mode = MODES[mode_index]
        name = list(GROOVES)[grooves[i]]
        variant = split.variant
        groove = randomised(name, rng) if variant is None else GROOVES[name][variant]
        top = COMPOUND_MAX_BPM if groove.denominator == 8 else MAX_BPM
        # Tempi spread evenly over the range (stratified), in an order independent of the rest.
        bpm = round(MIN_BPM + (top - MIN_BPM) * (positions[i] + rng.random()) / count, 2)
        scale_name, degrees = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
        programs = (
            int(rng.choice(palette["chords"])),
            int(rng.choice(palette["bass"])),
            int(rng.choice(palette["lead"])),
        )
        piece = Piece(
            path=f"piece{i:03d}.{FORMATS[formats[i]]}",
            bpm=float(bpm),
            key=KEY_NAMES[tonic],
            mode=mode,
            groove=name,
            meter=f"{groove.numerator}/{groove.denominator}",
            progression=f"{scale_name} {'-'.join(str(d + 1) for d in degrees)}",
            programs=programs,
            tuning_cents=round(float(rng.uniform(-MAX_TUNING_CENTS, MAX_TUNING_CENTS)), 1),
            sample_rate=int(rng.choice(SAMPLE_RATES)),
        )
        midi = compose(piece, groove, Harmony(_SCALES[scale_name], degrees), seconds, rng)
        pieces.append((piece, midi))
    return pieces


def quarter_bpm(bpm: float, groove: Groove) -> float:
    """The MIDI (quarter-note) tempo of a tactus: a 6/8 dotted quarter is 1.5 quarters."""
    return bpm * (1.5 if groove.denominator == 8 else 1.0)


@dataclass(frozen=True)
class Harmony:
    """A progression: the scale it draws on and its chord roots as scale degrees (0 = tonic)."""

    scale: tuple[int, ...]
    degrees: tuple[int, ...]


def compose(
    piece: Piece, groove: Groove, harmony: Harmony, seconds: float, rng: np.random.Generator
) -> pretty_midi.PrettyMIDI:
    """The MIDI of one piece: drums, bass on chord roots, chords, and a melody over them."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=quarter_bpm(piece.bpm, groove))
    midi.time_signature_changes.append(
        pretty_midi.TimeSignature(groove.numerator, groove.denominator, 0.0)
    )
    score = _Score(piece, groove, harmony, seconds, rng)
    bar_steps = groove.beats_per_bar * groove.beat_steps
    for bar in range(int(np.ceil(seconds / (bar_steps * score.step)))):
        score.bar(bar)
    midi.instruments.extend(score.parts)
    return midi


class _Score:
    """The parts of one piece, written bar by bar on the groove's step grid."""

    def __init__(
        self,
        piece: Piece,
        groove: Groove,
        harmony: Harmony,
        seconds: float,
        rng: np.random.Generator,
    ) -> None:
        self.groove, self.harmony, self.seconds, self.rng = groove, harmony, seconds, rng
        self.step = 60.0 / piece.bpm / groove.beat_steps
        self.bar_steps = groove.beats_per_bar * groove.beat_steps
        self.tonic_pc = KEY_NAMES.index(piece.key)
        self.parts = [pretty_midi.Instrument(p) for p in piece.programs]
        self.parts.append(pretty_midi.Instrument(0, is_drum=True))

    def add(self, part: int, pitch: int, start: int, length: int, velocity: int) -> None:
        """A note `start` steps in, `length` steps long, velocity humanised by ±8."""
        begin = start * self.step
        if begin < self.seconds:
            velocity = int(np.clip(velocity + self.rng.integers(-8, 9), 20, 127))
            note = pretty_midi.Note(velocity, pitch, begin, begin + length * self.step)
            self.parts[part].notes.append(note)

    def strike(
        self, part: int, pitches: list[int], hits: tuple[int, ...], first: int, vel: int
    ) -> None:
        """`pitches` struck at each of `hits` (steps in the bar), held until the next hit."""
        for a, b in itertools.pairwise([*hits, self.bar_steps]):
            for p in pitches:
                self.add(part, p, first + a, max(1, b - a - 1), vel)

    def bar(self, bar: int) -> None:
        groove, scale, degrees = self.groove, self.harmony.scale, self.harmony.degrees
        first = bar * self.bar_steps
        root_degree = degrees[bar % len(degrees)]
        triad = [scale[(root_degree + k) % 7] + 12 * ((root_degree + k) // 7) for k in (0, 2, 4)]
        root = 36 + (self.tonic_pc + triad[0]) % 12  # bass in C2..B2
        chord = [48 + (self.tonic_pc + pc) % 12 for pc in triad]  # voiced within G3..F#4
        chord = sorted(p + 12 if p < 55 else p for p in chord)
        intro = bar < groove.intro_bars
        if groove.comp and not intro:
            self.strike(_CHORDS, chord, groove.comp, first, 72)
        else:
            for p in chord:
                self.add(_CHORDS, p, first, self.bar_steps, 64)
        if intro:
            return
        self.strike(_BASS, [root], groove.bass, first, 96)
        if groove.arpeggio:
            tones = [*chord, chord[0] + 12, chord[1] + 12]
            for k, s in enumerate(range(0, self.bar_steps, groove.arpeggio)):
                self.add(_LEAD, tones[k % len(tones)], first + s, groove.arpeggio, 70)
        else:
            self.melody(triad, first, phrase_end=bar % len(degrees) == len(degrees) - 1)
        if groove.drums:
            for steps, note, vel in (
                (groove.kick, _KICK, 110),
                (groove.snare, _SNARE, 100),
                (groove.hats, groove.hat_note, 70),
            ):
                for s in steps:
                    self.add(_DRUMS, note, first + s, 1, vel)

    def melody(self, triad: list[int], first: int, phrase_end: bool) -> None:
        """Chord tones on the beats and scale steps between; the last beat of a loop ends on
        the tonic when the loop's last chord holds it (a phrase end)."""
        rng, beat, beats = self.rng, self.groove.beat_steps, self.groove.beats_per_bar
        base = 60 + self.tonic_pc % 12
        for b in range(beats):
            if rng.random() < 0.25:
                continue  # a rest
            tone = int(rng.choice(triad))
            if phrase_end and b == beats - 1 and 0 in [t % 12 for t in triad]:
                tone = 0
            length = beat if rng.random() < 0.6 else beat // 2
            self.add(_LEAD, base + tone, first + b * beat, length, 84)
            if rng.random() < 0.4 and beat >= 2:
                passing = self.harmony.scale[int(rng.integers(7))]
                self.add(_LEAD, base + passing, first + b * beat + beat // 2, beat - beat // 2, 70)


class Renderer:
    """Renders MIDI through one SF2 with tinysoundfont; one loaded synth per sample rate."""

    def __init__(self, soundfont: Path) -> None:
        self.soundfont = soundfont
        self.synths: dict[int, tuple[tinysoundfont.Synth, int]] = {}

    def _synth(self, rate: int) -> tuple[tinysoundfont.Synth, int]:
        if rate not in self.synths:
            synth = tinysoundfont.Synth(samplerate=rate)
            self.synths[rate] = synth, synth.sfload(str(self.soundfont))
        synth, sfid = self.synths[rate]
        synth.sounds_off()
        return synth, sfid

    def __call__(
        self, midi: pretty_midi.PrettyMIDI, rate: int, cents: float
    ) -> npt.NDArray[np.float32]:
        """Stereo float32 (n, 2) audio of the MIDI, detuned by `cents`, peak at -1 dBFS."""
        synth, sfid = self._synth(rate)
        events: list[tuple[float, int, int, int, int]] = []  # time, on/off, channel, pitch, vel
        for index, part in enumerate(midi.instruments):
            channel = _DRUM_CHANNEL if part.is_drum else index
            if part.is_drum:
                synth.program_select(channel, sfid, 128, 0, is_drums=True)
            else:
                synth.program_select(channel, sfid, 0, part.program)
                synth.control_change(channel, 10, _PANS[index % len(_PANS)])
                synth.pitchbend(channel, round(8192 + 8192 * cents / 200.0))  # ±2 semitones
            for note in part.notes:
                events.append((note.start, 1, channel, note.pitch, note.velocity))
                events.append((note.end, 0, channel, note.pitch, 0))
        events.sort()
        end = midi.get_end_time() + 1.0
        out = np.zeros((round(end * rate), 2), dtype=np.float32)
        done = 0
        for time_s, on, channel, pitch, velocity in [*events, (end, 0, 0, 0, 0)]:
            at = min(out.shape[0], round(time_s * rate))
            if at > done:
                block = np.frombuffer(synth.generate(at - done), dtype=np.float32)
                out[done:at] = block.reshape(-1, 2)
                done = at
            if on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        peak = float(np.max(np.abs(out)))
        return out * np.float32(0.89 / peak) if peak > 0 else out


def encode(path: Path, audio: npt.NDArray[np.float32], rate: int) -> None:
    """Write stereo float audio as WAV/FLAC/MP3/OGG Vorbis (by suffix) with PyAV's encoders."""
    fmt = path.suffix.lstrip(".")
    options = {"strict": "experimental"} if fmt == "ogg" else {}
    planar = np.ascontiguousarray(audio.T)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_CODECS[fmt], rate=rate, layout="stereo", options=options)
        for start in range(0, planar.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start : start + 4096]),
                format="fltp",
                layout="stereo",
            )
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def build(
    split: Split, count: int, seconds: float, cache: Path = CACHE
) -> tuple[Path, list[Piece]]:
    """Render (or reuse from the cache) a split's pieces; returns their folder and labels."""
    soundfont = find_soundfont(split.soundfont)
    identity = json.dumps([CORPUS_VERSION, asdict(split), count, seconds], sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    folder = cache / f"corpus-{split.name}-{digest}"
    labels = folder / "labels.json"
    if labels.exists():
        return folder, [_piece(row) for row in json.loads(labels.read_text())]
    folder.mkdir(parents=True, exist_ok=True)
    render = Renderer(soundfont)
    pieces = []
    for piece, midi in plan(split, count, seconds):
        audio = render(midi, piece.sample_rate, piece.tuning_cents)
        encode(folder / piece.path, audio[: round(seconds * piece.sample_rate)], piece.sample_rate)
        pieces.append(piece)
    # Written last: a folder without labels is an interrupted render and is redone.
    labels.write_text(json.dumps([asdict(p) for p in pieces], indent=1))
    return folder, pieces


def _piece(row: dict[str, object]) -> Piece:
    programs = row["programs"]
    assert isinstance(programs, list)
    return Piece(**{**row, "programs": tuple(programs)})  # type: ignore[arg-type]
