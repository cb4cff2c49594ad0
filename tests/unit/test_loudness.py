"""The loudness meter against FFmpeg's `ebur128` filter (the libebur128 reference) on the same
samples: correlated, decorrelated and anti-phase stereo, mono, 5.1, 44.1/48/96 kHz, gated silence,
EBU Tech 3341 true-peak sines and Tech 3342 loudness-range steps — and on real encodes, decoded
by the decode stage and by PyAV separately."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from handlers.decode.core import decode_to_analysis
from handlers.decode.loudness import (
    SILENCE_DB,
    LoudnessMeter,
    channel_weights,
    replaygain_db,
)
from handlers.decode.truepeak import TAPS, TruePeakMeter, phase_filters
from schemas.payloads import Loudness
from tests.encode import encode
from tests.reference_loudness import Reference, decode_with_pyav, ebur128, programme, signals, sine

INTEGRATED_LU = 0.1
TRUE_PEAK_DB = 0.2
RANGE_LU = 0.5


def _measure(samples: npt.NDArray[np.floating], rate: int, layout: str) -> Loudness:
    names = [channel.name for channel in av.AudioLayout(layout).channels]
    meter = LoudnessMeter(rate, channel_weights(names))
    for start in range(0, samples.shape[1], 30_000):  # blocks of an odd size, like a decoder's
        meter.add(np.ascontiguousarray(samples[:, start : start + 30_000], dtype=np.float32))
    return meter.result()


def _assert_agrees(ours: Loudness, reference: Reference, *, check_range: bool = True) -> None:
    assert ours.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=INTEGRATED_LU)
    assert ours.true_peak_dbtp == pytest.approx(reference.true_peak_dbtp, abs=TRUE_PEAK_DB)
    if check_range:
        assert ours.range_lu == pytest.approx(reference.range_lu, abs=RANGE_LU)


@pytest.mark.parametrize(("name", "samples", "rate", "layout"), signals(), ids=lambda v: v)
def test_agrees_with_ffmpeg_ebur128(
    name: str, samples: npt.NDArray[np.float64], rate: int, layout: str
) -> None:
    ours = _measure(samples, rate, layout)
    reference = ebur128(samples, rate, layout)
    # Short-term blocks that straddle 5 s of digital silence are where the two meters' block
    # grids differ most; the range is still compared on every other signal.
    _assert_agrees(ours, reference, check_range=name != "gated silence")


@pytest.mark.parametrize(
    ("freq", "phase"),
    [(12000.0, 0.0), (12000.0, np.pi / 4), (8000.0, np.pi / 6), (6000.0, np.pi / 4)],
)
def test_tech_3341_true_peak_sines(freq: float, phase: float) -> None:
    """Tech 3341 cases 15-19: sines at fs/4, fs/6 and fs/8 whose peaks fall between samples."""
    amp = 10 ** (-6.0 / 20)
    wave = sine(48000, 5.0, freq, amp, phase)
    samples = np.stack([wave, wave])
    ours = _measure(samples, 48000, "stereo")
    assert ours.true_peak_dbtp == pytest.approx(-6.0, abs=TRUE_PEAK_DB)
    assert ours.true_peak_dbtp == pytest.approx(
        ebur128(samples, 48000, "stereo").true_peak_dbtp, abs=TRUE_PEAK_DB
    )
    assert ours.sample_peak_dbfs <= ours.true_peak_dbtp + 1e-6


@pytest.mark.parametrize(("first", "second", "expected"), [(-20, -30, 10.0), (-20, -15, 5.0)])
def test_tech_3342_loudness_range_steps(first: float, second: float, expected: float) -> None:
    t = np.arange(48000 * 20) / 48000
    sine = np.sin(2 * np.pi * 1000 * t)
    step = np.concatenate([sine * 10 ** (first / 20), sine * 10 ** (second / 20)])
    samples = np.stack([step, step])
    ours = _measure(samples, 48000, "stereo")
    assert ours.range_lu == pytest.approx(expected, abs=1.0)  # Tech 3342's own tolerance
    assert ours.range_lu == pytest.approx(ebur128(samples, 48000, "stereo").range_lu, abs=0.1)


def test_lfe_is_left_out_and_surrounds_weigh_more() -> None:
    assert channel_weights(["FL", "FR", "FC", "LFE", "BL", "BR"]) == [1, 1, 1, 0, 1.41, 1.41]
    assert channel_weights(["FL", "FR", "FC", "LFE", "SL", "SR"]) == [1, 1, 1, 0, 1.41, 1.41]


def test_silence_and_replaygain() -> None:
    silent = _measure(np.zeros((2, 48000 * 3)), 48000, "stereo")
    assert silent.integrated_lufs == SILENCE_DB
    assert silent.true_peak_dbtp == SILENCE_DB
    assert silent.replaygain_db == 0.0
    assert replaygain_db(-9.5) == pytest.approx(-8.5)
    assert replaygain_db(-23.0) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("kind", "rate", "channels"),
    [("m4a-aac", 44100, 2), ("opus", 48000, 2), ("mp3", 44100, 2), ("flac", 96000, 6)],
)
def test_real_encodes_agree_with_ffmpeg(
    tmp_path: Path, kind: str, rate: int, channels: int
) -> None:
    """Loudness of the decoded file as the decode stage reports it, against the reference."""
    music = programme(rate, 12.0, channels, seed=7)
    src = encode(tmp_path / f"in.{kind}", 1.6 * music, rate, kind)  # loud, like a master
    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"))
    samples, decoded_rate, layout = decode_with_pyav(src)
    assert decoded_rate == result.source_sample_rate == rate
    _assert_agrees(result.loudness, ebur128(samples, rate, layout))


# a dynamic programme (most runs skipped) and one clipped like a loud master (few skipped)
@pytest.mark.parametrize(("gain", "most_interpolated"), [(0.5, 0.5), (4.0, 1.0)])
def test_true_peak_interpolates_only_what_can_win_and_misses_nothing(
    gain: float, most_interpolated: float
) -> None:
    """The skipped runs cannot hold the peak: the meter agrees with interpolating every position
    of every channel with the same filter, block sizes notwithstanding."""
    rate = 44100
    music = np.tanh(gain * programme(rate, 6.0, 2, seed=11)).astype(np.float32)
    music[1, rate : rate + 5] = [0.0, 0.9, -0.9, 0.9, -0.9]  # an inter-sample over in one spot
    meter = TruePeakMeter(2)
    for start in range(0, music.shape[1], 7_919):
        meter.add(music[:, start : start + 7_919])
    windows = np.lib.stride_tricks.sliding_window_view(music.astype(np.float64), TAPS, axis=1)
    dense = float(np.abs(windows @ phase_filters()).max())
    assert meter.true_peak == pytest.approx(max(dense, float(np.abs(music).max())), rel=1e-5)
    assert meter.true_peak > meter.sample_peak  # the over is found …
    assert meter.runs_interpolated <= most_interpolated * meter.runs
