"""The features stage's pure core: analysis audio in, a Features payload out.

One spectral pass (dsp.analyse_spectra) feeds every spectral descriptor: tempo and onsets from
the log-mel flux (tempo), key from the tuned chroma (key), MFCC from the log-mel spectrum and
the spectral-shape scalars. Loudness is measured by the decode stage on the source channels and
passed in; only events decoded before that existed get it from the mono analysis audio. Zero
crossings are counted on the waveform directly. Frames whose RMS
is more than ACTIVE_FLOOR_DB below full scale count as silence and are left out of the spectral,
timbre and chroma statistics, so a fade or a gap does not drag the averages toward zero.
Digital silence and clips shorter than MIN_RHYTHM_S get the documented defaults instead of
guesses: tempo 0, key C major, both with confidence 0.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import scipy.fft

from handlers import progress
from handlers.decode import loudness
from handlers.features import key, tempo
from handlers.features.dsp import Spectra, analyse_spectra, power_to_db
from schemas.payloads import KEY_NAMES, Features, Loudness

F32 = npt.NDArray[np.float32]

N_MFCC = 20
MIN_RHYTHM_S = 1.0  # tempo and key need at least this much audio
ACTIVE_FLOOR_DB = -60.0
_ZCR_CHUNK = 1 << 20


def analyse(
    samples: npt.NDArray[np.floating], sample_rate: int, programme: Loudness | None = None
) -> Features:
    """Measure mono audio at `sample_rate` (float, nominally within [-1, 1]); `programme` is the
    source's loudness (measured on the mono audio itself when None)."""
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    audio = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(audio.sum(dtype=np.float64)):
        raise ValueError("samples contain NaN or infinity")
    duration = audio.size / sample_rate
    if not np.any(audio):
        return silent_features(duration)

    if programme is None:
        meter = loudness.LoudnessMeter(sample_rate, [1.0])
        meter.add(audio[None, :])
        programme = meter.result()
    spectra = analyse_spectra(audio, sample_rate)
    progress.report(0.7)  # the spectral pass is most of the work
    mel_db = power_to_db(spectra.mel_power)
    active = spectra.rms > np.float32(10.0 ** (ACTIVE_FLOOR_DB / 20.0))
    if not np.any(active):
        active = np.ones_like(active)
    envelope = tempo.onset_envelope(mel_db)
    chroma = _chroma(spectra, active)
    mfcc = mel_db[active] @ _dct_basis(mel_db.shape[1]).T

    long_enough = duration >= MIN_RHYTHM_S
    bpm, bpm_confidence = (
        tempo.estimate_tempo(envelope, spectra.frame_rate, *tempo_inputs(spectra, mel_db))
        if long_enough
        else (0.0, 0.0)
    )
    tonic, mode, key_confidence = (
        _key(chroma, _opening_bass(spectra, active))
        if long_enough
        else (KEY_NAMES[0], "major", 0.0)
    )
    return Features(
        duration_s=duration,
        tempo_bpm=bpm,
        tempo_confidence=bpm_confidence,
        key=tonic,
        mode=mode,
        key_confidence=key_confidence,
        loudness_lufs=programme.integrated_lufs,
        loudness_range_lu=programme.range_lu,
        true_peak_dbtp=programme.true_peak_dbtp,
        sample_peak_dbfs=programme.sample_peak_dbfs,
        replaygain_db=programme.replaygain_db,
        energy=_mean(spectra.rms),
        spectral_centroid_hz=_mean(spectra.centroid[active]),
        spectral_bandwidth_hz=_mean(spectra.bandwidth[active]),
        spectral_rolloff_hz=_mean(spectra.rolloff[active]),
        spectral_flatness=_mean(spectra.flatness[active]),
        zero_crossing_rate=_zero_crossing_rate(audio),
        onset_rate=tempo.onset_rate(envelope, spectra.frame_rate, duration),
        mfcc_mean=_floats(mfcc.mean(axis=0)),
        mfcc_std=_floats(mfcc.std(axis=0)),
        chroma_mean=_floats(chroma.mean(axis=0)),
        chroma_std=_floats(chroma.std(axis=0)),
    )


def silent_features(duration_s: float) -> Features:
    """The defaults reported for digital silence."""
    return Features(
        duration_s=duration_s,
        tempo_bpm=0.0,
        tempo_confidence=0.0,
        key=KEY_NAMES[0],
        mode="major",
        key_confidence=0.0,
        loudness_lufs=loudness.SILENCE_DB,
        loudness_range_lu=0.0,
        true_peak_dbtp=loudness.SILENCE_DB,
        sample_peak_dbfs=loudness.SILENCE_DB,
        energy=0.0,
        spectral_centroid_hz=0.0,
        spectral_bandwidth_hz=0.0,
        spectral_rolloff_hz=0.0,
        spectral_flatness=0.0,
        zero_crossing_rate=0.0,
        onset_rate=0.0,
        mfcc_mean=[0.0] * N_MFCC,
        mfcc_std=[0.0] * N_MFCC,
        chroma_mean=[0.0] * 12,
        chroma_std=[0.0] * 12,
    )


def tempo_inputs(spectra: Spectra, mel_db: F32) -> tuple[tuple[F32, F32, F32], F32]:
    """What the tempo level model reads besides the onset envelope (bench.fit reads the same):
    the band envelopes and the harmonic novelty, over every frame so that periods hold."""
    every_frame = np.ones_like(spectra.rms, dtype=bool)
    return (
        tempo.band_envelopes(mel_db, spectra.sample_rate),
        tempo.harmonic_novelty(_chroma(spectra, every_frame)),
    )


def _chroma(spectra: Spectra, active: npt.NDArray[np.bool_], bass: bool = False) -> F32:
    """Per-frame 12-bin chroma of the active frames, tuned, each frame scaled to a maximum of 1.

    The tuning is always read from the full pitch profile; `bass` folds the bass register's.
    """
    pitch = spectra.pitch[active]
    tuning = key.estimate_tuning(pitch.sum(axis=0, dtype=np.float64))
    source = spectra.bass[active] if bass else pitch
    chroma = source @ key.fold_matrix(pitch.shape[1], tuning)
    peak = chroma.max(axis=1, keepdims=True)
    return np.asarray(chroma / np.where(peak > 0, peak, 1.0), dtype=np.float32)


def _opening_bass(spectra: Spectra, active: npt.NDArray[np.bool_]) -> F32:
    """Mean bass chroma of the first key.OPENING_S seconds of active frames (see key)."""
    frames = max(1, round(key.OPENING_S * spectra.frame_rate))
    return np.asarray(_chroma(spectra, active, bass=True)[:frames].mean(axis=0), dtype=np.float32)


def _key(chroma: F32, opening_bass: F32) -> tuple[str, str, float]:
    """Key of the mean chroma; frames without a tonal peak (noise, drums) dilute the confidence."""
    tonic, mode, confidence = key.estimate_key(
        chroma.mean(axis=0, dtype=np.float64), opening_bass.astype(np.float64)
    )
    tonal_share = float(np.mean(chroma.max(axis=1) > 0))
    return tonic, mode, confidence * tonal_share


def _zero_crossing_rate(audio: F32) -> float:
    """Fraction of adjacent sample pairs whose signs differ (zero counts as positive)."""
    if audio.size < 2:
        return 0.0
    crossings = 0
    for start in range(0, audio.size - 1, _ZCR_CHUNK):
        negative = audio[start : start + _ZCR_CHUNK + 1] < 0
        crossings += int(np.count_nonzero(negative[1:] != negative[:-1]))
    return crossings / (audio.size - 1)


@functools.cache
def _dct_basis(size: int) -> F32:
    """The first N_MFCC rows of the orthonormal DCT-II of length `size` (MFCC = log-mel @ .T)."""
    basis = scipy.fft.dct(np.eye(size), type=2, norm="ortho", axis=0)[:N_MFCC]
    return np.asarray(basis, dtype=np.float32)


def _mean(values: F32) -> float:
    return float(np.mean(values, dtype=np.float64)) if values.size else 0.0


def _floats(values: npt.NDArray[np.floating]) -> list[float]:
    return [float(v) for v in values]
