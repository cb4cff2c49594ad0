"""What the stages learn about a track, carried forward inside every later event.

Each event is self-contained (DESIGN: any stage can be replayed from its input alone), so the
payloads below travel with the track from the stage that computes them to the index.
"""

from __future__ import annotations

import msgspec

KEY_NAMES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MODES: tuple[str, ...] = ("major", "minor")
AUDIO_VECTOR_DIM = 400  # the two musicnn penultimate layers, standardised
SEMANTIC_VECTOR_DIM = 512


class TrackRef(msgspec.Struct, kw_only=True, frozen=True):
    """Identity of an uploaded track and where its original bytes live."""

    track_id: str
    tenant: str
    blob_key: str
    filename: str = ""
    sha256: str = ""
    size_bytes: int = 0


class Loudness(msgspec.Struct, kw_only=True, frozen=True):
    """EBU R128 / BS.1770-4 measurements of the source channels at the source rate."""

    integrated_lufs: float
    range_lu: float
    true_peak_dbtp: float
    sample_peak_dbfs: float
    replaygain_db: float
    """ReplayGain 2.0 track gain: the gain that brings the track to -18 LUFS."""


class FileMetadata(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What the file says about itself (its tags) and how it is encoded; empty when unknown."""

    title: str = ""
    artist: str = ""
    album: str = ""
    album_artist: str = ""
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    year: int | None = None
    genre: str = ""
    codec: str = ""
    bit_rate: int | None = None
    cover_key: str | None = None
    """Blob key of the embedded cover art, when the file has one within the size limit."""
    cover_type: str | None = None
    """The cover's MIME type (image/jpeg, image/png, image/gif or image/webp)."""


class DecodedAudio(msgspec.Struct, kw_only=True, frozen=True):
    """The normalised analysis audio (mono, one rate, stored as a blob) and what the probe saw.

    `loudness` is measured on the source channels while decoding; events written before it
    existed carry None, and the features stage then measures the analysis audio instead.
    """

    analysis_key: str
    sample_rate: int
    duration_s: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    peaks: list[float] = []
    loudness: Loudness | None = None
    metadata: FileMetadata = FileMetadata()


class Features(msgspec.Struct, kw_only=True, frozen=True):
    """Measured descriptors of one track. Keys use KEY_NAMES, modes use MODES."""

    duration_s: float
    tempo_bpm: float
    tempo_confidence: float
    key: str
    mode: str
    key_confidence: float
    loudness_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    energy: float
    spectral_centroid_hz: float
    spectral_bandwidth_hz: float
    spectral_rolloff_hz: float
    spectral_flatness: float
    zero_crossing_rate: float
    onset_rate: float
    mfcc_mean: list[float]
    mfcc_std: list[float]
    chroma_mean: list[float]
    chroma_std: list[float]
    sample_peak_dbfs: float = 0.0
    replaygain_db: float = 0.0


class TagScores(msgspec.Struct, kw_only=True, frozen=True):
    """What the pretrained musicnn models hear in a track (handlers.understanding).

    `msd` and `mtt` map each of the models' 50 tags to its probability (0–1, mean over the
    sampled patches); `embedding` is their penultimate layers, MSD then MTT (raw, as the models
    output them; the embedding stage standardises them into the `audio` vector).
    """

    model: str
    msd: dict[str, float]
    mtt: dict[str, float]
    embedding: list[float]
    patches: int = 0


class Tags(msgspec.Struct, kw_only=True, frozen=True):
    """Human-facing labels and a one-line description; `source` names the tagger that made them.

    Genre, mood, instruments and vocals come from the models' `scores` (when present); energy,
    brightness and tempo class from the measured features.
    """

    mood: list[str]
    genre: list[str]
    energy: str
    brightness: str
    tempo_class: str
    description: str
    source: str = "heuristic"
    instruments: list[str] = []
    vocals: list[str] = []
    scores: TagScores | None = None


class Vectors(msgspec.Struct, kw_only=True, frozen=True):
    """`audio` is always present; `semantic` only when CLIP weights were available."""

    audio: list[float]
    semantic: list[float] | None = None
    semantic_model: str | None = None
