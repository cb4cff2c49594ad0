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
from schemas.payloads import Loudness
from tests.encode import encode
from tests.reference_loudness import Reference, ebur128

INTEGRATED_LU = 0.1
TRUE_PEAK_DB = 0.2
RANGE_LU = 0.5


def _measure(samples: npt.NDArray[np.floating], rate: int, layout: str) -> Loudness:
    names = [channel.name for channel in av.AudioLayout(layout).channels]
    meter = LoudnessMeter(rate, channel_weights(names))
    for start in range(0, samples.shape[1], 30_000):  # blocks of an odd size, like a decoder's
        meter.add(np.ascontiguousarray(samples[:, start : start + 30_000], dtype=np.float32))
    return meter.result()


def _faded(signal: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """Half-second fades: real programmes start and end quietly, not with a step."""
    t = np.arange(signal.shape[-1]) / rate
    return signal * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.5)


def _programme(rate: int, seconds: float, channels: int, seed: int) -> npt.NDArray[np.float64]:
    """Independent pink-ish noise per channel under a slow swell: music-like level changes."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=1)
    spectrum[:, 1:] /= np.sqrt(np.arange(1, spectrum.shape[1]))
    noise = np.fft.irfft(spectrum, n, axis=1)
    noise /= np.abs(noise).max()
    t = np.arange(n) / rate
    return _faded(0.6 * noise * (0.3 + 0.7 * np.sin(2 * np.pi * 0.05 * t) ** 2), rate)


def _sine(rate: int, seconds: float, freq: float, amp: float, phase: float = 0.0):  # type: ignore[no-untyped-def]
    t = np.arange(round(rate * seconds)) / rate
    return _faded(amp * np.sin(2 * np.pi * freq * t + phase), rate)


def _assert_agrees(ours: Loudness, reference: Reference, *, check_range: bool = True) -> None:
    assert ours.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=INTEGRATED_LU)
    assert ours.true_peak_dbtp == pytest.approx(reference.true_peak_dbtp, abs=TRUE_PEAK_DB)
    if check_range:
        assert ours.range_lu == pytest.approx(reference.range_lu, abs=RANGE_LU)


def _signals() -> list[tuple[str, npt.NDArray[np.float64], int, str]]:
    sine = _sine(48000, 12.0, 997.0, 0.5)
    music = _programme(48000, 20.0, 2, seed=1)
    gated = music.copy()
    gated[:, 48000 * 6 : 48000 * 11] = 0.0
    return [
        ("stereo, correlated", np.stack([sine, sine]), 48000, "stereo"),
        ("stereo, anti-phase", np.stack([sine, -sine]), 48000, "stereo"),
        ("stereo, decorrelated", music, 48000, "stereo"),
        ("stereo, 44.1 kHz", _programme(44100, 20.0, 2, seed=2), 44100, "stereo"),
        ("stereo, 96 kHz", _programme(96000, 12.0, 2, seed=3), 96000, "stereo"),
        ("mono", sine[None, :], 48000, "mono"),
        ("5.1", _programme(48000, 15.0, 6, seed=4), 48000, "5.1"),
        ("5.1 side", _programme(48000, 15.0, 6, seed=5), 48000, "5.1(side)"),
        ("gated silence", gated, 48000, "stereo"),
    ]


@pytest.mark.parametrize(("name", "samples", "rate", "layout"), _signals(), ids=lambda v: v)
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
    wave = _sine(48000, 5.0, freq, amp, phase)
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


def _decode_with_pyav(path: Path) -> tuple[npt.NDArray[np.float32], int, str]:
    """The file decoded independently of the decode stage: planar float, its rate and layout."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
        chunks = [
            converted.to_ndarray()
            for frame in container.decode(stream)
            for converted in resampler.resample(frame)
        ]
        return np.concatenate(chunks, axis=1), stream.rate, stream.layout.name


@pytest.mark.parametrize(
    ("kind", "rate", "channels"),
    [("m4a-aac", 44100, 2), ("opus", 48000, 2), ("mp3", 44100, 2), ("flac", 96000, 6)],
)
def test_real_encodes_agree_with_ffmpeg(
    tmp_path: Path, kind: str, rate: int, channels: int
) -> None:
    """Loudness of the decoded file as the decode stage reports it, against the reference."""
    programme = _programme(rate, 12.0, channels, seed=7)
    src = encode(tmp_path / f"in.{kind}", 1.6 * programme, rate, kind)  # loud, like a master
    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"))
    samples, decoded_rate, layout = _decode_with_pyav(src)
    assert decoded_rate == result.source_sample_rate == rate
    _assert_agrees(result.loudness, ebur128(samples, rate, layout))
