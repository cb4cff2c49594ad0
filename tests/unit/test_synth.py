"""The synthetic test tracks: shape, level, determinism, and that they survive a file round trip."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tests.synth import PEAK_DBFS, render_track, write_track

RATE = 22050


def _render(**overrides: Any) -> npt.NDArray[np.float32]:
    kwargs: dict[str, Any] = {"bpm": 120.0, "key": "D", "mode": "minor", "seconds": 3.0}
    return render_track(**{**kwargs, "sample_rate": RATE, **overrides})


@pytest.mark.parametrize("stereo", [False, True])
def test_length_dtype_and_peak(stereo: bool) -> None:
    audio = _render(seconds=2.5, stereo=stereo)
    assert audio.dtype == np.float32
    assert audio.shape == ((55125, 2) if stereo else (55125,))
    assert float(np.max(np.abs(audio))) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-5)


def test_stereo_channels_differ_by_panning() -> None:
    audio = _render(stereo=True)
    assert not np.allclose(audio[:, 0], audio[:, 1])


def test_rendering_is_deterministic_per_seed() -> None:
    assert np.array_equal(_render(seed=3), _render(seed=3))
    assert not np.array_equal(_render(seed=3), _render(seed=4))


@pytest.mark.parametrize(
    "parts",
    [
        {"drums": False},
        {"bass": False},
        {"melody": False},
        {"drums": False, "bass": False, "melody": False},
    ],
)
def test_parts_can_be_left_out(parts: dict[str, bool]) -> None:
    audio = _render(**parts)
    assert np.all(np.isfinite(audio))
    assert not np.array_equal(audio, _render())


def test_tuning_a_semitone_sharp_equals_the_next_key() -> None:
    sharp_c = _render(key="C", mode="major", tuning_cents=100.0)
    c_sharp = _render(key="C#", mode="major")
    np.testing.assert_allclose(sharp_c, c_sharp, atol=1e-4)


@pytest.mark.parametrize(("key", "mode", "bpm"), [("H", "major", 120.0), ("C", "dorian", 120.0)])
def test_rejects_unknown_key_or_mode(key: str, mode: str, bpm: float) -> None:
    with pytest.raises(ValueError, match="unknown"):
        _render(key=key, mode=mode, bpm=bpm)


def test_a_three_minute_track_renders_quickly() -> None:
    started = time.perf_counter()
    audio = render_track(bpm=128.0, key="A", mode="minor", seconds=180.0)
    assert audio.shape == (180 * 44100,)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(("fmt", "suffix"), [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg")])
def test_write_track_round_trips(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = write_track(
        tmp_path / f"track.{suffix}",
        format=fmt,
        bpm=100.0,
        key="G",
        mode="major",
        seconds=2.0,
        sample_rate=RATE,
        stereo=True,
    )
    data, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    assert data.shape == (2 * RATE, 2)
    if fmt != "OGG":  # lossless formats keep every sample to 16-bit precision
        expected = render_track(
            bpm=100.0, key="G", mode="major", seconds=2.0, sample_rate=RATE, stereo=True
        )
        np.testing.assert_allclose(data, expected, atol=2.0**-14)
