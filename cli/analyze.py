"""Offline analysis of one file with the pipeline's own cores, for `tonestream analyze`.

`handlers.jobs.decode_and_analyse` runs the decode core and the very function the features
stage runs, so the numbers match what an ingest reports.
`analyse_path` runs in a pool worker and imports the DSP stack there, so the CLI process (and
every other command) starts without it; its result crosses back as a small Struct.
"""

from __future__ import annotations

import msgspec


class Analysis(msgspec.Struct, kw_only=True, frozen=True):
    """The headline measurements of one file; `tonestream show` lists all of an ingested one."""

    file: str
    duration_s: float
    tempo_bpm: float
    tempo_confidence: float
    key: str
    mode: str
    key_confidence: float
    loudness_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    sample_peak_dbfs: float
    replaygain_db: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    codec: str = ""
    title: str = ""
    artist: str = ""
    album: str = ""


class AnalysisFailure(msgspec.Struct, kw_only=True, frozen=True):
    file: str
    error: str


def analyse_path(
    file: str, *, target_rate: int, max_duration_s: float, timeout_s: float
) -> Analysis:
    """Decode and measure `file`; DecodeError (with a readable reason) when it is not usable."""
    from handlers.jobs import decode_and_analyse

    decoded, features = decode_and_analyse(
        file, target_rate=target_rate, max_duration_s=max_duration_s, timeout_s=timeout_s
    )
    return Analysis(
        file=file,
        duration_s=features.duration_s,
        tempo_bpm=features.tempo_bpm,
        tempo_confidence=features.tempo_confidence,
        key=features.key,
        mode=features.mode,
        key_confidence=features.key_confidence,
        loudness_lufs=features.loudness_lufs,
        loudness_range_lu=features.loudness_range_lu,
        true_peak_dbtp=features.true_peak_dbtp,
        sample_peak_dbfs=features.sample_peak_dbfs,
        replaygain_db=features.replaygain_db,
        source_format=decoded.source_format,
        source_sample_rate=decoded.source_sample_rate,
        source_channels=decoded.source_channels,
        codec=decoded.metadata.codec,
        title=decoded.metadata.title,
        artist=decoded.metadata.artist,
        album=decoded.metadata.album,
    )
