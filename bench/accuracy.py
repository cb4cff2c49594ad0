"""Analysis accuracy: tempo and key of labelled sets, Tonestream beside librosa.

DESIGN promises tempo and key a listener can trust. This measures them the MIREX way on pieces
whose answer is known, and puts them beside what librosa's defaults give on the same files in
the same run, with the time each one takes per track — so "better" and "no slower" are claims
about one machine at one moment, not about numbers copied from elsewhere.

The headline set is the VALIDATION split of the independent corpus (bench/corpus.py: General
MIDI arrangements rendered through FluidR3_GM, grooves and progressions that fool estimators),
which no constant of the analysis was fitted on; `--accuracy-split tuning` measures the split
they were fitted on instead. The section says which soundfonts it found and how to install a
missing one.

The second, regression set (tests/synth.py) spreads the pieces evenly over the 24 keys
(equally when their number is a multiple of 24), tempi evenly over 60–180 BPM (never round
numbers), WAV, FLAC and OGG Vorbis at 44.1 or 48 kHz, mono and stereo, five arrangements (two
without drums, one with chords and drums only), tunings up to ±30 cents off A = 440 Hz and, on
half the pieces, a pink-noise floor 12–30 dB below the music; each attribute is shuffled
independently of the others. It is kinder than real recordings — one steady tempo, a cadence
that names its key — and Tonestream's analysis was developed on the same generator, so read it as
a regression check against a known baseline, not as accuracy on real music.

Tonestream runs exactly as its stages do: `decode_to_analysis` (to the analysis FLAC), then
`analyse_file`. librosa runs its documented defaults: `load` (22050 Hz mono), `beat.beat_track`
for the tempo, and `feature.chroma_cqt` averaged over time, correlated with the 24 rotated
Krumhansl–Kessler profiles, for the key. Each system first analyses one extra piece that is not
scored, so one-off costs (librosa's numba JIT, imports, filter banks) are excluded; then they
take turns on every piece, in the same process, so both see the same machine.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import numpy.typing as npt
import soundfile as sf

from bench import corpus
from bench.report import markdown_table, phase, verdict
from handlers.decode.core import decode_to_analysis
from handlers.jobs import analyse_file
from schemas.payloads import KEY_NAMES, MODES
from schemas.settings import Settings
from tests.synth import render_track

TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1 / 3)
MIN_BPM, MAX_BPM = 60.0, 180.0
FORMATS = ("WAV", "FLAC", "OGG")
SAMPLE_RATES = (44100, 48000)
ARRANGEMENTS: dict[str, dict[str, bool]] = {
    "full band": {},
    "no drums": {"drums": False},
    "no melody": {"melody": False},
    "drums and chords": {"bass": False, "melody": False},
    "chords and melody": {"drums": False, "bass": False},
}
MAX_TUNING_CENTS = 30.0
NOISE_SNR_DB = (12.0, 30.0)
# Krumhansl–Kessler probe-tone profiles, tonic first (the textbook Krumhansl–Schmuckler method).
# fmt: off
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
# fmt: on


@dataclass(frozen=True)
class Piece:
    """One labelled file and how it was made."""

    path: Path
    bpm: float
    key: str
    mode: str
    arrangement: str
    sample_rate: int
    stereo: bool
    tuning_cents: float
    noise_snr_db: float | None


@dataclass(frozen=True)
class Estimate:
    bpm: float
    key: str
    mode: str
    seconds: float


@dataclass(frozen=True)
class Labelled:
    """What scoring needs of a piece of either set: its file, labels and group (arrangement or
    groove)."""

    path: Path
    bpm: float
    key: str
    mode: str
    group: str


Analyser = Callable[[Path], tuple[float, str, str]]


def make_pieces(folder: Path, count: int, seconds: float, seed: int = 0) -> list[Piece]:
    """Render `count` labelled pieces into `folder` (see the module docstring for the mix)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Each attribute is balanced on its own and shuffled independently of the others.
    keys = rng.permutation(count) % (len(KEY_NAMES) * len(MODES))
    arrangements = rng.permutation(count) % len(ARRANGEMENTS)
    formats = rng.permutation(count) % len(FORMATS)
    noisy = rng.permutation(count) % 2 == 1
    tempi = rng.permutation(
        MIN_BPM + (MAX_BPM - MIN_BPM) * (np.arange(count) + rng.random(count)) / count
    )
    pieces = []
    for i in range(count):
        mode, tonic = divmod(int(keys[i]), len(KEY_NAMES))
        arrangement = list(ARRANGEMENTS)[arrangements[i]]
        fmt = FORMATS[formats[i]]
        piece = Piece(
            path=folder / f"piece{i:03d}.{fmt.lower()}",
            bpm=round(float(tempi[i]), 2),
            key=KEY_NAMES[tonic],
            mode=MODES[mode],
            arrangement=arrangement,
            sample_rate=int(rng.choice(SAMPLE_RATES)),
            stereo=bool(rng.random() < 0.5),
            tuning_cents=round(float(rng.uniform(-MAX_TUNING_CENTS, MAX_TUNING_CENTS)), 1),
            noise_snr_db=round(float(rng.uniform(*NOISE_SNR_DB)), 1) if noisy[i] else None,
        )
        audio = render_track(
            bpm=piece.bpm, key=piece.key, mode=piece.mode, seconds=seconds,
            sample_rate=piece.sample_rate, stereo=piece.stereo, tuning_cents=piece.tuning_cents,
            seed=seed * 100_003 + i, **ARRANGEMENTS[arrangement],
        )  # fmt: skip
        if piece.noise_snr_db is not None:
            audio = _with_noise(audio, piece.noise_snr_db, rng)
        sf.write(piece.path, audio, piece.sample_rate, format=fmt)
        pieces.append(piece)
    return pieces


def _with_noise(
    audio: npt.NDArray[np.float32], snr_db: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Add pink (1/f) noise `snr_db` below the music's RMS; rescale if the sum would clip."""
    spectrum = np.fft.rfft(rng.standard_normal(audio.shape), axis=0)
    frequencies = np.arange(spectrum.shape[0]).reshape(-1, *([1] * (audio.ndim - 1)))
    noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(frequencies, 1)), n=audio.shape[0], axis=0)
    noise *= np.sqrt(np.mean(audio**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    mixed = audio + noise
    return (mixed / max(1.0, float(np.max(np.abs(mixed))) / 0.99)).astype(np.float32)


def tempo_correct(estimate: float, truth: float, factors: tuple[float, ...] = (1.0,)) -> bool:
    """Within TEMPO_TOLERANCE of the truth times any of `factors` (Acc1: 1 only; Acc2: octaves)."""
    return any(abs(estimate - f * truth) <= TEMPO_TOLERANCE * f * truth for f in factors)


def key_score(key: str, mode: str, true_key: str, true_mode: str) -> float:
    """MIREX weighted key score: same 1, a fifth either way 0.5, relative 0.3, parallel 0.2."""
    interval = (KEY_NAMES.index(key) - KEY_NAMES.index(true_key)) % 12
    if mode == true_mode:
        return {0: 1.0, 5: 0.5, 7: 0.5}.get(interval, 0.0)
    if interval == 0:
        return 0.2
    relative = 9 if true_mode == "major" else 3  # C major ↔ A minor
    return 0.3 if interval == relative else 0.0


def krumhansl_key(chroma: npt.NDArray[np.floating]) -> tuple[str, str]:
    """The key whose rotated Krumhansl–Kessler profile correlates best with a 12-bin chroma."""
    scores = [
        (float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]), KEY_NAMES[tonic], mode)
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR))
        for tonic in range(12)
    ]
    _, key, mode = max(scores)
    return key, mode


class Tonestream:
    """The decode and features stage cores, run back to back as the pipeline runs them."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = str(scratch)
        self.sample_rate = Settings().analysis_sample_rate

    def __call__(self, path: Path) -> tuple[float, str, str]:
        decode_to_analysis(str(path), self.scratch, target_rate=self.sample_rate)
        features = analyse_file(self.scratch)
        return features.tempo_bpm, features.key, features.mode


@contextlib.contextmanager
def _librosa_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        # librosa.load imports audioread (its fallback decoder, never used here: soundfile
        # reads every format in the set), which imports stdlib modules deprecated in 3.11.
        warnings.filterwarnings(
            "ignore", r"'(aifc|audioop|sunau)' is deprecated", DeprecationWarning
        )
        yield


def librosa_baseline(path: Path) -> tuple[float, str, str]:
    """librosa's defaults: load at 22050 Hz mono, beat_track, mean chroma_cqt + Krumhansl."""
    with _librosa_warnings():
        y, sr = librosa.load(path)
        tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr).mean(axis=1)
    return float(np.atleast_1d(tempo)[0]), *krumhansl_key(chroma)


def _estimate(analyser: Analyser, piece: Labelled) -> Estimate:
    began = time.perf_counter()
    bpm, key, mode = analyser(piece.path)
    return Estimate(bpm, key, mode, time.perf_counter() - began)


def summarise(pieces: list[Labelled], estimates: list[Estimate], seconds: float) -> dict[str, Any]:
    """Acc1, Acc2, key scores and time per track of one system over the set."""

    def scores(group: list[tuple[Labelled, Estimate]]) -> dict[str, float]:
        key = [key_score(e.key, e.mode, p.key, p.mode) for p, e in group]
        return {
            "tempo_acc1": statistics.mean(tempo_correct(e.bpm, p.bpm) for p, e in group),
            "tempo_acc2": statistics.mean(
                tempo_correct(e.bpm, p.bpm, OCTAVE_FACTORS) for p, e in group
            ),
            "key_weighted": statistics.mean(key),
            "key_exact": statistics.mean(s == 1.0 for s in key),
        }

    pairs = list(zip(pieces, estimates, strict=True))
    times = [e.seconds for e in estimates]
    return {
        **scores(pairs),
        "s_per_track_mean": statistics.mean(times),
        "s_per_track_median": statistics.median(times),
        "x_realtime": seconds / statistics.mean(times),
        "by_group": {
            name: scores([(p, e) for p, e in pairs if p.group == name])
            for name in sorted({p.group for p in pieces})
        },
    }


def _compare(
    systems: dict[str, Analyser], labelled: list[Labelled], seconds: float, name: str
) -> dict[str, Any]:
    """Both systems on every piece, taking turns; scores and per-piece details."""
    estimates: dict[str, list[Estimate]] = {system: [] for system in systems}
    # Turns alternate who goes first, so a change in the machine's load weighs on both alike.
    with phase(f"accuracy: both systems on {len(labelled)} {name} pieces, taking turns"):
        for i, piece in enumerate(labelled):
            for system in list(systems)[:: 1 if i % 2 == 0 else -1]:
                estimates[system].append(_estimate(systems[system], piece))
    return {
        "pieces": len(labelled),
        "systems": {system: summarise(labelled, e, seconds) for system, e in estimates.items()},
        "details": [
            {
                **asdict(piece),
                "path": piece.path.name,
                **{system: asdict(e[i]) for system, e in estimates.items()},
            }
            for i, piece in enumerate(labelled)
        ],
    }


def measure_accuracy(
    work: Path,
    pieces: int,
    seconds: float,
    seed: int = 0,
    *,
    split: str = corpus.VALIDATION.name,
    synth_pieces: int = 48,
    cache: Path = corpus.CACHE,
) -> dict[str, Any]:
    """Render (or reuse) the corpus split and generate the synth set; analyse both with both
    systems and score them. A split whose soundfont is missing is reported, not measured."""
    folder = work / "accuracy"
    soundfonts = corpus.soundfont_status()
    with phase(f"accuracy: {split} split of the corpus, {pieces} pieces of {seconds:g} s"):
        corpus_folder, rendered = folder, []
        try:
            corpus_folder, rendered = corpus.build(corpus.SPLITS[split], pieces, seconds, cache)
        except corpus.MissingSoundfontError as missing:
            print(f"accuracy: {split} split not measured: {missing}")
    with phase(f"accuracy: rendering {synth_pieces} synth pieces and a warm-up"):
        synth = make_pieces(folder, synth_pieces, seconds, seed) if synth_pieces else []
        warmup = make_pieces(folder / "warm-up", 1, seconds, seed + 1)[0]
    systems: dict[str, Analyser] = {
        "tonestream": Tonestream(folder / "analysis.flac"),
        "librosa": librosa_baseline,
    }
    for name, analyser in systems.items():
        with phase(f"accuracy: {name} warm-up on the extra piece (not scored)"):
            analyser(warmup.path)
    sets = {
        "corpus": [
            Labelled(corpus_folder / p.path, p.bpm, p.key, p.mode, p.groove) for p in rendered
        ],
        "synth": [Labelled(p.path, p.bpm, p.key, p.mode, p.arrangement) for p in synth],
    }
    return {
        "split": split,
        "soundfonts": soundfonts,
        "piece_seconds": seconds,
        "seed": seed,
        **{
            name: _compare(systems, labelled, seconds, name) if labelled else None
            for name, labelled in sets.items()
        },
    }


def _pct(value: float) -> str:
    return f"{value:.1%}"


TARGET_ACC1, TARGET_MIREX = 0.96, 0.92  # on the VALIDATION split


def _timing(system: dict[str, Any]) -> str:
    return f"{system['s_per_track_mean']:.3f} s ({system['x_realtime']:.0f}× realtime)"


def _set_rows(run: dict[str, Any], label: str, targets: bool) -> list[tuple[str, ...]]:
    """The rows of one labelled set; with `targets`, each beside the corpus targets."""
    ours, base = run["systems"]["tonestream"], run["systems"]["librosa"]
    tempo_ok = ours["tempo_acc1"] > base["tempo_acc1"]
    key_ok = ours["key_weighted"] > base["key_weighted"]
    tempo_target = f"≥ {TARGET_ACC1:.0%} and > librosa: " + verdict(
        tempo_ok and ours["tempo_acc1"] >= TARGET_ACC1
    )
    key_target = f"≥ {TARGET_MIREX:.2f} and > librosa: " + verdict(
        key_ok and ours["key_weighted"] >= TARGET_MIREX
    )
    return [
        (
            f"{label}: tempo Acc1 (±4 %), {run['pieces']} pieces",
            _pct(ours["tempo_acc1"]),
            _pct(base["tempo_acc1"]),
            tempo_target if targets else f"> librosa: {verdict(tempo_ok)}",
        ),
        (
            f"{label}: tempo Acc2 (×2, ×½, ×3, ×⅓ also count)",
            _pct(ours["tempo_acc2"]),
            _pct(base["tempo_acc2"]),
            "—",
        ),
        (
            f"{label}: key MIREX weighted score",
            f"{ours['key_weighted']:.3f}",
            f"{base['key_weighted']:.3f}",
            key_target if targets else f"> librosa: {verdict(key_ok)}",
        ),
        (f"{label}: key exact", _pct(ours["key_exact"]), _pct(base["key_exact"]), "—"),
        (
            f"{label}: time per piece, mean (decode + tempo + key, after one unscored warm-up)",
            _timing(ours),
            _timing(base),
            "≤ librosa: " + verdict(ours["s_per_track_mean"] <= base["s_per_track_mean"]),
        ),
    ]


def accuracy_table(result: dict[str, Any]) -> str:
    split = result["split"]
    rows: list[tuple[str, ...]] = [
        (f"soundfont {name}", path, "", "validation needs FluidR3_GM.sf2")
        for name, path in result["soundfonts"].items()
    ]
    if result["corpus"] is None:
        rows.append((f"corpus ({split} split)", "not measured", "", "see the soundfont rows"))
    else:
        rows += _set_rows(result["corpus"], f"corpus, {split} split", split == "validation")
    if result["synth"] is not None:
        rows += _set_rows(result["synth"], "synth regression set", targets=False)
    return markdown_table(("measurement", "Tonestream", "librosa baseline", "target"), rows)
