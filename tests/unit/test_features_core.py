"""The features core on audio whose answers are known: synthetic music, test tones, silence."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
import soxr

from handlers.decode.loudness import SILENCE_DB
from handlers.features.core import N_MFCC, analyse
from schemas.payloads import KEY_NAMES, MODES, Features
from tests.synth import render_track

RATE = 22050
SECONDS = 20.0

# (bpm, key, mode, drums): both modes, sharps and naturals, 64–170 BPM, with and without drums.
CASES = [
    (64.0, "A#", "major", True),
    (72.0, "C", "major", True),
    (84.0, "B", "minor", False),
    (96.0, "F#", "major", False),
    (110.0, "E", "major", True),
    (128.0, "D#", "minor", True),
    (140.0, "G", "major", False),
    (150.0, "F", "minor", True),
    (160.0, "C#", "minor", False),
    (170.0, "A", "minor", True),
]


def _tone(freq: float, amplitude: float, seconds: float, rate: int) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _assert_tempo_and_key(features: Features, bpm: float, key: str, mode: str) -> None:
    assert features.tempo_bpm == pytest.approx(bpm, rel=0.04)
    assert (features.key, features.mode) == (key, mode)
    assert features.tempo_confidence > 0.5
    assert features.key_confidence > 0.5


@pytest.mark.parametrize(("bpm", "key", "mode", "drums"), CASES)
def test_synth_tempo_and_key(bpm: float, key: str, mode: str, drums: bool) -> None:
    audio = render_track(
        bpm=bpm, key=key, mode=mode, drums=drums, seconds=SECONDS, sample_rate=RATE, seed=7
    )
    _assert_tempo_and_key(analyse(audio, RATE), bpm, key, mode)


def test_detuned_stereo_track_through_the_analysis_rate() -> None:
    """As the pipeline sees it: 44.1 kHz stereo, downmixed and resampled, 35 cents sharp."""
    stereo = render_track(
        bpm=118.0, key="G#", mode="minor", seconds=SECONDS, stereo=True, tuning_cents=35.0
    )
    mono = soxr.resample(stereo.mean(axis=1), 44100, RATE).astype(np.float32)
    _assert_tempo_and_key(analyse(mono, RATE), 118.0, "G#", "minor")


def test_other_sample_rates_are_analysed_alike() -> None:
    audio = render_track(bpm=132.0, key="D", mode="major", seconds=SECONDS, sample_rate=48000)
    _assert_tempo_and_key(analyse(audio, 48000), 132.0, "D", "major")


def test_features_are_complete_finite_and_encodable() -> None:
    audio = render_track(bpm=100.0, key="E", mode="minor", seconds=10.0, sample_rate=RATE)
    features = analyse(audio, RATE)
    assert features.duration_s == pytest.approx(10.0)
    assert features.key in KEY_NAMES
    assert features.mode in MODES
    assert len(features.mfcc_mean) == len(features.mfcc_std) == N_MFCC
    assert len(features.chroma_mean) == len(features.chroma_std) == 12
    scalars = [v for v in msgspec.structs.asdict(features).values() if isinstance(v, float)]
    vectors = [*features.mfcc_mean, *features.mfcc_std, *features.chroma_mean]
    assert all(math.isfinite(v) for v in [*scalars, *vectors])
    assert 0 < features.spectral_centroid_hz < features.spectral_rolloff_hz < RATE / 2
    assert 0 < features.spectral_flatness < 1
    assert 0 < features.zero_crossing_rate < 0.5
    # Every beat carries a chord onset: about bpm / 60 onsets per second, plus off-beat hats.
    assert 100.0 / 60 * 0.8 < features.onset_rate < 100.0 / 60 * 2.2
    # The synth peaks at -1 dBFS; a dense mix sits well below that in loudness.
    assert -1.5 < features.true_peak_dbtp < 0.5
    assert -30.0 < features.loudness_lufs < -5.0
    assert max(features.chroma_mean) <= 1.0
    assert msgspec.json.decode(msgspec.json.encode(features), type=Features) == features


@pytest.mark.parametrize(("amplitude", "expected"), [(1.0, -3.01), (0.1, -23.01)])
def test_loudness_of_a_1khz_sine_at_48khz(amplitude: float, expected: float) -> None:
    features = analyse(_tone(1000.0, amplitude, 10.0, 48000), 48000)
    assert features.loudness_lufs == pytest.approx(expected, abs=0.1)
    assert features.loudness_range_lu == pytest.approx(0.0, abs=0.1)


def test_relative_gate_ignores_quiet_passages() -> None:
    loud = _tone(1000.0, 0.1, 10.0, 48000)
    audio = np.concatenate([loud, loud * np.float32(0.001)])  # then 60 dB quieter
    assert analyse(audio, 48000).loudness_lufs == pytest.approx(-23.01, abs=0.1)


def test_loudness_range_of_two_levels_10_lu_apart() -> None:
    loud = _tone(1000.0, 0.1, 20.0, 48000)
    audio = np.concatenate([loud, loud * np.float32(10 ** (-10 / 20))])
    assert analyse(audio, 48000).loudness_range_lu == pytest.approx(10.0, abs=0.5)


def test_true_peak_finds_the_peak_between_samples() -> None:
    # A quarter-rate sine at 45° phase: every sample sits 3 dB below the waveform's crest.
    t = np.arange(48000 * 5) / 48000
    audio = (0.5 * np.sin(2 * np.pi * 12000 * t + np.pi / 4)).astype(np.float32)
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-9.03, abs=0.05)
    assert analyse(audio, 48000).true_peak_dbtp == pytest.approx(-6.02, abs=0.2)


def test_true_peak_of_a_sine_at_the_analysis_rate() -> None:
    features = analyse(_tone(997.0, 0.5, 5.0, RATE), RATE)
    assert features.true_peak_dbtp == pytest.approx(-6.02, abs=0.1)


@pytest.mark.parametrize("seconds", [0.0, 0.3, 10.0])
def test_digital_silence_gets_the_defaults(seconds: float) -> None:
    features = analyse(np.zeros(round(seconds * RATE), dtype=np.float32), RATE)
    assert features.duration_s == pytest.approx(seconds)
    assert (features.tempo_bpm, features.tempo_confidence) == (0.0, 0.0)
    assert (features.key, features.mode, features.key_confidence) == ("C", "major", 0.0)
    assert features.loudness_lufs == SILENCE_DB
    assert features.true_peak_dbtp == SILENCE_DB
    assert features.mfcc_mean == [0.0] * N_MFCC


@pytest.mark.parametrize("seconds", [0.01, 0.5, 0.99])
def test_clips_shorter_than_a_second_get_no_tempo_or_key(seconds: float) -> None:
    audio = render_track(bpm=120.0, key="E", mode="major", seconds=seconds, sample_rate=RATE)
    features = analyse(audio, RATE)
    assert features.duration_s == pytest.approx(seconds, abs=1 / RATE)
    assert (features.tempo_bpm, features.tempo_confidence) == (0.0, 0.0)
    assert (features.key, features.mode, features.key_confidence) == ("C", "major", 0.0)
    assert features.energy > 0


def test_noise_has_neither_tempo_nor_key_with_confidence() -> None:
    tempo_confidences = []
    for seed in range(8):
        noise = np.random.default_rng(seed).standard_normal(RATE * 15).astype(np.float32) * 0.1
        features = analyse(noise, RATE)
        tempo_confidences.append(features.tempo_confidence)
        assert features.key_confidence < 0.2
        assert features.spectral_flatness > 0.4
    # searching hundreds of periods finds a pile of noise onsets now and then, never often
    assert sorted(tempo_confidences)[-2] < 0.3, tempo_confidences


def test_a_steady_chord_has_a_key_but_no_tempo() -> None:
    t = np.arange(RATE * 15) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))  # C E G
    features = analyse((0.2 * chord).astype(np.float32), RATE)
    assert (features.key, features.mode) == ("C", "major")
    assert features.tempo_confidence < 0.3


def test_rejects_multichannel_and_non_finite_input() -> None:
    with pytest.raises(ValueError, match="mono"):
        analyse(np.zeros((RATE, 2), dtype=np.float32), RATE)
    broken = np.zeros(RATE, dtype=np.float32)
    broken[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analyse(broken, RATE)
