"""The musicnn front end in numpy: 16 kHz mono → log-compressed 96-band mel patches of 3 s.

It reproduces what the models were trained on (musicnn's `extractor.batch_data`, librosa's
defaults): 512-point Hann frames centred on a 256-sample hop, power spectrum, 96 Slaney-style
mel bands (Slaney-normalised) up to 8 kHz, then log10(10000·x + 1) — computed in float32 here, as
float16 overflows under numpy 2. A track is not analysed whole: up to `max_patches` evenly spaced
187-frame patches are enough to describe it, and cost a fixed amount per track.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: what the models were trained on
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP  # frame centres spanned by one patch

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def _hz_to_mel(hz: F64) -> F64:
    """Slaney's scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False)."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = hz / f_sp
    high = hz >= min_log_hz
    mels[high] = min_log_mel + np.log(hz[high] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: F64) -> F64:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    hz = mels * f_sp
    high = mels >= min_log_mel
    hz[high] = min_log_hz * np.exp(logstep * (mels[high] - min_log_mel))
    return hz


@functools.cache
def mel_filterbank() -> F32:
    """[N_MELS, N_FFT // 2 + 1] triangular filters, area-normalised (librosa norm="slaney")."""
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(
            _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2
        )
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.cache
def _window() -> F32:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann


def patch_starts(n_samples: int, max_patches: int) -> list[int]:
    """Sample offsets of up to `max_patches` evenly spaced patches over `n_samples` of audio
    (the audio must already be at least one patch long)."""
    span = n_samples - 1 - PATCH_SAMPLES
    if span < 0:
        raise ValueError("audio shorter than one patch: repeat-pad it first")
    count = max(1, min(max_patches, (n_samples - 1) // PATCH_SAMPLES))
    if count == 1:
        return [span // 2 // HOP * HOP]
    # rounded down to a hop: rounding up could start the last patch past the end
    return sorted({i * span // (count - 1) // HOP * HOP for i in range(count)})


def repeat_pad(samples: F32) -> F32:
    """Tracks shorter than one patch are repeated to fill it (as the models were trained)."""
    need = PATCH_SAMPLES + 1
    if samples.size == 0:
        raise ValueError("no audio samples")
    if samples.size >= need:
        return samples
    return np.tile(samples, -(-need // samples.size))[:need]


def log_mel_patches(samples: F32, max_patches: int) -> F32:
    """[patches, PATCH_FRAMES, N_MELS] log-mel patches of mono 16 kHz float audio."""
    audio = repeat_pad(np.asarray(samples, dtype=np.float32))
    padded = np.pad(audio, N_FFT // 2, mode="reflect" if audio.size > N_FFT // 2 else "wrap")
    starts = patch_starts(audio.size, max_patches)
    frame_idx = np.arange(PATCH_FRAMES)[:, None] * HOP + np.arange(N_FFT)[None, :]
    frames = np.stack([padded[start + frame_idx] for start in starts]) * _window()
    power = np.abs(np.fft.rfft(frames, axis=-1)).astype(np.float32) ** 2
    mel = power @ mel_filterbank().T
    out: F32 = np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)
    return out
