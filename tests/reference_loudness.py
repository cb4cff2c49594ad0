"""FFmpeg's `ebur128` filter (libavfilter, inside the `av` wheel) as the reference loudness meter,
and the signals both the tests and `just bench --sections loudness` measure with it.

Tests compare Tonestream's meter with it on the same samples: the filter graph is fed planar float
frames with the given channel layout, and the final frame's `lavfi.r128.*` metadata is the
programme's integrated loudness, loudness range and true peak.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import av.filter
import numpy as np
import numpy.typing as npt
from msgspec import Struct

_FRAME = 4096


class Reference(Struct, frozen=True):
    integrated_lufs: float
    range_lu: float
    true_peak_dbtp: float


def ebur128(samples: npt.NDArray[np.floating], sample_rate: int, layout: str) -> Reference:
    """Measure planar `samples` (channels, frames) with FFmpeg's ebur128 filter (peak=true)."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(sample_rate=sample_rate, format="fltp", layout=layout)
    meter = graph.add("ebur128", "peak=true:metadata=1:framelog=quiet")
    sink = graph.add("abuffersink")
    source.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    planar = np.ascontiguousarray(samples, dtype=np.float32)
    last: dict[str, str] = {}

    def drain() -> None:
        nonlocal last
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            if "lavfi.r128.true_peak" in frame.metadata:  # frames after the meter's flush have none
                last = dict(frame.metadata)

    for start in range(0, planar.shape[1], _FRAME):
        chunk = np.ascontiguousarray(planar[:, start : start + _FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    peak = float(last["lavfi.r128.true_peak"])
    return Reference(
        integrated_lufs=float(last["lavfi.r128.I"]),
        range_lu=float(last["lavfi.r128.LRA"]),
        true_peak_dbtp=20 * math.log10(peak) if peak > 0 else -math.inf,
    )


def faded(signal: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """Half-second fades: real programmes start and end quietly, not with a step."""
    t = np.arange(signal.shape[-1]) / rate
    return signal * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.5)


def programme(rate: int, seconds: float, channels: int, seed: int) -> npt.NDArray[np.float64]:
    """Independent pink-ish noise per channel under a slow swell: music-like level changes."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=1)
    spectrum[:, 1:] /= np.sqrt(np.arange(1, spectrum.shape[1]))
    noise = np.fft.irfft(spectrum, n, axis=1)
    noise /= np.abs(noise).max()
    t = np.arange(n) / rate
    return faded(0.6 * noise * (0.3 + 0.7 * np.sin(2 * np.pi * 0.05 * t) ** 2), rate)


def sine(
    rate: int, seconds: float, freq: float, amp: float, phase: float = 0.0
) -> npt.NDArray[np.float64]:
    t = np.arange(round(rate * seconds)) / rate
    return faded(amp * np.sin(2 * np.pi * freq * t + phase), rate)


def signals() -> list[tuple[str, npt.NDArray[np.float64], int, str]]:
    tone = sine(48000, 12.0, 997.0, 0.5)
    music = programme(48000, 20.0, 2, seed=1)
    gated = music.copy()
    gated[:, 48000 * 6 : 48000 * 11] = 0.0
    return [
        ("stereo, correlated", np.stack([tone, tone]), 48000, "stereo"),
        ("stereo, anti-phase", np.stack([tone, -tone]), 48000, "stereo"),
        ("stereo, decorrelated", music, 48000, "stereo"),
        ("stereo, 44.1 kHz", programme(44100, 20.0, 2, seed=2), 44100, "stereo"),
        ("stereo, 96 kHz", programme(96000, 12.0, 2, seed=3), 96000, "stereo"),
        ("mono", tone[None, :], 48000, "mono"),
        ("5.1", programme(48000, 15.0, 6, seed=4), 48000, "5.1"),
        ("5.1 side", programme(48000, 15.0, 6, seed=5), 48000, "5.1(side)"),
        ("gated silence", gated, 48000, "stereo"),
    ]


def decode_with_pyav(path: Path) -> tuple[npt.NDArray[np.float32], int, str]:
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
