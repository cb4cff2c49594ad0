"""The one spectral pass: a chunked STFT reduced frame by frame to everything the features need.

Every spectral feature (tempo, key, timbre, spectral shape) is derived from a single short-time
Fourier transform. The transform is computed a few hundred frames at a time and each chunk is
immediately reduced to small per-frame summaries (mel power, a 36-bin pitch-class profile, the
spectral-shape scalars), so the complex spectrum of a whole track never exists at once and a
ten-minute track stays within a small, fixed memory budget. Conventions follow librosa (Slaney
mel filters, unnormalised periodic Hann window, centred zero-padded frames) so downstream
constants calibrated against librosa keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.ndimage
import scipy.signal
import scipy.sparse

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

REFERENCE_RATE = 22050
REFERENCE_FFT = 2048  # ≈ 93 ms frames at the reference rate
N_MELS = 128
PITCH_BINS = 36  # three bins per semitone, so the tuning can be read from the profile
ROLLOFF = 0.85
_ROLLOFF_GROUP = 32  # bins summed together in the coarse rolloff search
_CHUNK_FRAMES = 512
_AMIN = 1e-10
_PITCH_FMIN = 100.0
_PITCH_FMAX = 5000.0
_PITCH_CENTER_HZ = 440.0  # octave weighting: most weight around A4 ±1.5 octaves
_PITCH_OCTAVE_WIDTH = 1.5
_BASS_FMIN = 50.0  # the bass register: E1's neighbourhood up to about C4
_BASS_FMAX = 260.0
_PEAK_FLOOR_DB = -50.0
_TONAL_DB = 12.0
_TONAL_SPAN_HZ = 110.0


@dataclass(frozen=True, slots=True)
class Spectra:
    """Per-frame summaries of one STFT; every array has one row per frame."""

    sample_rate: int
    n_fft: int
    hop: int
    mel_power: F32  # (frames, N_MELS), librosa melspectrogram(power=2) convention
    pitch: F32  # (frames, PITCH_BINS), bin j = pitch class j/3 semitones above C (A = 440 Hz)
    bass: F32  # (frames, PITCH_BINS), the same profile of the bass register alone
    rms: F32  # time-domain RMS of each (unwindowed) frame
    centroid: F32  # Hz
    bandwidth: F32  # Hz
    rolloff: F32  # Hz
    flatness: F32  # power-spectrum geometric / arithmetic mean

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


def frame_size(sample_rate: int) -> int:
    """FFT size with the same duration as 2048 samples at 22.05 kHz, rounded to a power of 2."""
    return int(2 ** round(np.log2(REFERENCE_FFT * sample_rate / REFERENCE_RATE)))


def analyse_spectra(samples: F32, sample_rate: int) -> Spectra:
    """Run the STFT chunk by chunk and keep only the per-frame summaries."""
    n_fft = frame_size(sample_rate)
    hop = n_fft // 4
    n_frames = 1 + samples.size // hop
    freqs = np.asarray(np.fft.rfftfreq(n_fft, 1.0 / sample_rate), dtype=np.float64)
    window = scipy.signal.get_window("hann", n_fft).astype(np.float32)
    mel_sparse = scipy.sparse.csr_array(mel_filters(sample_rate, n_fft))  # ~2 weights per bin
    pitch_map = _PitchMapper(sample_rate, n_fft, _PITCH_FMIN, _PITCH_FMAX, _PITCH_OCTAVE_WIDTH)
    bass_map = _PitchMapper(sample_rate, n_fft, _BASS_FMIN, _BASS_FMAX, None)
    moments_t = np.stack([freqs, freqs**2], axis=1).astype(np.float32)

    mel = np.empty((n_frames, N_MELS), dtype=np.float32)
    pitch = np.empty((n_frames, PITCH_BINS), dtype=np.float32)
    bass = np.empty((n_frames, PITCH_BINS), dtype=np.float32)
    scalars = np.empty((5, n_frames), dtype=np.float32)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(start + _CHUNK_FRAMES, n_frames)
        frames = _frames(samples, start, stop, n_fft, hop)
        magnitude = np.abs(scipy.fft.rfft(frames * window, axis=1))
        power = magnitude * magnitude
        floored = np.maximum(power, np.float32(_AMIN))
        log_power = np.log(floored)
        mel[start:stop] = (mel_sparse @ power.T).T
        pitch[start:stop] = pitch_map(power, log_power)
        bass[start:stop] = bass_map(power, log_power)
        scalars[0, start:stop] = np.sqrt(np.einsum("ij,ij->i", frames, frames) / n_fft)
        scalars[1:, start:stop] = _shape(magnitude, floored, log_power, moments_t, freqs)
    return Spectra(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop=hop,
        mel_power=mel,
        pitch=pitch,
        bass=bass,
        rms=scalars[0],
        centroid=scalars[1],
        bandwidth=scalars[2],
        rolloff=scalars[3],
        flatness=scalars[4],
    )


def _frames(samples: F32, start: int, stop: int, n_fft: int, hop: int) -> F32:
    """Frames start..stop-1 of a centred, zero-padded framing, as a strided view when possible."""
    lo = start * hop - n_fft // 2
    hi = lo + (stop - start - 1) * hop + n_fft
    segment = samples[max(lo, 0) : min(hi, samples.size)]
    if lo < 0 or hi > samples.size:
        segment = np.pad(segment, (max(-lo, 0), max(hi - samples.size, 0)))
    return np.lib.stride_tricks.sliding_window_view(segment, n_fft)[::hop]


def _shape(magnitude: F32, floored: F32, log_power: F32, moments_t: F32, freqs: F64) -> F32:
    """Centroid, bandwidth, 85 % rolloff and flatness of each frame (zeros for silent frames);
    `floored` is the power spectrum floored at _AMIN, `log_power` its logarithm."""
    total = magnitude.sum(axis=1)
    safe = np.where(total > 0, total, 1.0).astype(np.float32)
    moments = (magnitude @ moments_t) / safe[:, None]
    centroid = moments[:, 0]
    bandwidth = np.sqrt(np.maximum(moments[:, 1] - centroid * centroid, 0.0))
    rolloff = np.where(total > 0, freqs[_rolloff_bins(magnitude, ROLLOFF * total)], 0.0)
    flatness = np.exp(np.mean(log_power, axis=1)) / np.mean(floored, axis=1)
    return np.stack([centroid, bandwidth, rolloff, flatness]).astype(np.float32)


def _rolloff_bins(magnitude: F32, threshold: F32) -> npt.NDArray[np.intp]:
    """Per frame, the first bin where the cumulative magnitude reaches `threshold`: found among
    sums of _ROLLOFF_GROUP bins first, then within that group (a full-width cumulative sum per
    frame was a tenth of the spectral pass)."""
    frames, bins = magnitude.shape
    starts = np.arange(0, bins, _ROLLOFF_GROUP)
    coarse = np.cumsum(np.add.reduceat(magnitude, starts, axis=1), axis=1)
    group = np.argmax(coarse >= threshold[:, None], axis=1)
    rows = np.arange(frames)
    before = np.where(group > 0, coarse[rows, group - 1], 0.0).astype(np.float32)
    columns = np.minimum(group[:, None] * _ROLLOFF_GROUP + np.arange(_ROLLOFF_GROUP), bins - 1)
    within = before[:, None] + np.cumsum(magnitude[rows[:, None], columns], axis=1)
    reached = within >= threshold[:, None]
    offset = np.where(reached.any(axis=1), reached.argmax(axis=1), _ROLLOFF_GROUP - 1)
    return np.asarray(np.minimum(group * _ROLLOFF_GROUP + offset, bins - 1), dtype=np.intp)


def _hz_to_mel(hz: F64) -> F64:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: F64) -> F64:
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_centres(sample_rate: int, n_mels: int = N_MELS) -> F64:
    """Centre frequency (Hz) of each mel filter of mel_filters."""
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array(sample_rate / 2.0)), n_mels + 2))
    return np.asarray(edges[1:-1], dtype=np.float64)


def mel_filters(sample_rate: int, n_fft: int) -> F32:
    """Slaney-normalised triangular mel filters, shape (N_MELS, n_fft // 2 + 1)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array(sample_rate / 2.0)), N_MELS + 2))
    lower = edges[:-2, None]
    center = edges[1:-1, None]
    upper = edges[2:, None]
    rising = (freqs - lower) / (center - lower)
    falling = (upper - freqs) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return weights.astype(np.float32)


class _PitchMapper:
    """Tonal spectral peaks → 36-bin pitch-class energy, for one FFT size and register.

    A peak is a local maximum of a frame's power spectrum between `fmin` and `fmax`
    that stands _TONAL_DB above the geometric mean of its ±_TONAL_SPAN_HZ neighbourhood (noise
    almost never does, so hiss, drums and clicks add nothing) and within _PEAK_FLOOR_DB of the
    frame's strongest bin. Its frequency is refined by quadratic interpolation of the log power
    (a few cents for a Hann window), so chroma stays sharp even where a 93 ms frame cannot
    separate the bins of neighbouring semitones. Its magnitude (power would bury the chords under
    the bass), weighted by a Gaussian over octaves centred on A4 (`octave_width` octaves wide;
    None: unweighted), is split linearly between the two nearest of the 36 pitch bins.
    """

    def __init__(
        self, sample_rate: int, n_fft: int, fmin: float, fmax: float, octave_width: float | None
    ) -> None:
        self.bin_hz = sample_rate / n_fft
        self.lo = max(1, int(np.ceil(fmin / self.bin_hz)))
        self.hi = min(n_fft // 2 - 1, int(fmax / self.bin_hz))
        self.span = 2 * max(1, round(_TONAL_SPAN_HZ / self.bin_hz)) + 1
        self.octave_width = octave_width

    def __call__(self, power: F32, log_power: F32) -> F32:
        frames = power.shape[0]
        profile = np.zeros(frames * PITCH_BINS)
        if self.hi > self.lo:
            row, hz, magnitude = self._peaks(power, log_power)
            octave = np.log2(hz / _PITCH_CENTER_HZ)
            weight = magnitude
            if self.octave_width is not None:
                weight = weight * np.exp(-0.5 * (octave / self.octave_width) ** 2)
            position = np.mod((PITCH_BINS / 12.0) * (12.0 * octave + 9.0), PITCH_BINS)
            lower = np.floor(position).astype(np.intp)
            upper_share = position - lower
            slot = row * PITCH_BINS
            size = frames * PITCH_BINS
            profile += np.bincount(slot + lower % PITCH_BINS, weight * (1 - upper_share), size)
            profile += np.bincount(slot + (lower + 1) % PITCH_BINS, weight * upper_share, size)
        return profile.reshape(frames, PITCH_BINS).astype(np.float32)

    def _peaks(self, power: F32, log_power: F32) -> tuple[npt.NDArray[np.intp], F64, F64]:
        """Frame index, interpolated frequency and magnitude of every tonal peak."""
        floor = power.max(axis=1, keepdims=True) * np.float32(10.0 ** (_PEAK_FLOOR_DB / 10.0))
        log_band = log_power[:, self.lo - 1 : self.hi + 2]
        left, centre, right = log_band[:, :-2], log_band[:, 1:-1], log_band[:, 2:]
        background = scipy.ndimage.uniform_filter1d(log_band, self.span, axis=1)[:, 1:-1]
        tonal = centre > background + np.float32(_TONAL_DB * np.log(10.0) / 10.0)
        loud = power[:, self.lo : self.hi + 1] > floor
        row, col = np.nonzero((centre > left) & (centre >= right) & tonal & loud)
        log_l = left[row, col].astype(np.float64)
        log_c = centre[row, col].astype(np.float64)
        log_r = right[row, col].astype(np.float64)
        curvature = np.minimum(log_l - 2.0 * log_c + log_r, -1e-12)
        offset = np.clip(0.5 * (log_l - log_r) / curvature, -0.5, 0.5)
        return row, (self.lo + col + offset) * self.bin_hz, np.exp(0.5 * log_c)


def power_to_db(power: F32, top_db: float = 80.0) -> F32:
    """librosa.power_to_db(ref=1.0, amin=1e-10, top_db=80) on a whole array."""
    db = 10.0 * np.log10(np.maximum(power, np.float32(_AMIN)))
    return np.asarray(np.maximum(db, db.max(initial=-100.0) - top_db), dtype=np.float32)
