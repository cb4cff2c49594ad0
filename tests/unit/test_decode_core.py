"""The decode core: round trips, the analysis file, peaks, and every permanent refusal's reason."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from handlers.decode.core import DecodeError, decode_to_analysis, probe, read_analysis
from handlers.decode.loudness import LoudnessMeter, channel_weights
from stores.sniff import NotAudioError, check_head, sniff
from tests.encode import encode, tone

RATE = 22050


def _tone(
    seconds: float, rate: int, channels: int, freq: float = 440.0, amp: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


def _write(path: Path, audio: np.ndarray, rate: int, fmt: str) -> Path:
    with sf.SoundFile(path, "w", rate, audio.shape[1], format=fmt) as out:
        for start in range(0, len(audio), 8192):  # libsndfile's Vorbis encoder dislikes huge writes
            out.write(audio[start : start + 8192])
    return path


def _wav_header(rate: int, channels: int, frames: int = 1000) -> bytes:
    align = channels * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * align, align, 16)
    data = bytes(frames * align)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def _reason(src: Path, dst: Path, **kwargs: Any) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_to_analysis(str(src), str(dst), **kwargs)
    assert not dst.exists(), "a failed decode must not leave a partial analysis file"
    return caught.value.reason


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"),
    [
        ("WAV", 44100, 2),
        ("FLAC", 48000, 1),
        ("FLAC", 44100, 2),
        ("OGG", 48000, 2),
        ("MP3", 44100, 2),
        ("WAV", RATE, 1),
    ],
)
def test_round_trip(tmp_path: Path, fmt: str, rate: int, channels: int) -> None:
    src = _write(tmp_path / "in.bin", _tone(2.0, rate, channels), rate, fmt)
    dst = tmp_path / "out.flac"

    result = decode_to_analysis(str(src), str(dst))

    tolerance = 0.1 if fmt == "MP3" else 0.005  # MP3 adds encoder delay and padding
    assert result.sample_rate == RATE
    assert result.duration_s == pytest.approx(2.0, abs=tolerance)
    assert (result.source_format, result.source_sample_rate, result.source_channels) == (
        fmt,
        rate,
        channels,
    )
    info = sf.info(str(dst))
    assert (info.format, info.subtype, info.channels, info.samplerate) == (
        "FLAC",
        "PCM_16",
        1,
        RATE,
    )
    samples, sample_rate = read_analysis(str(dst))
    assert sample_rate == RATE
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert len(samples) == pytest.approx(result.duration_s * RATE, abs=RATE / 1000)
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * RATE / len(samples) == pytest.approx(440.0, abs=2.0)
    assert len(result.peaks) == 512
    assert all(0.0 <= p <= 1.0 for p in result.peaks)
    assert max(result.peaks) == pytest.approx(0.5, abs=0.06)


def test_payload_carries_the_result_and_the_key(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.wav", _tone(1.0, 44100, 2), 44100, "WAV")
    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"), peaks=8)

    payload = result.to_payload("blobs/analysis/t1.flac")

    assert payload.analysis_key == "blobs/analysis/t1.flac"
    assert (payload.duration_s, payload.peaks, payload.source_format) == (1.0, result.peaks, "WAV")


def test_stereo_is_mixed_by_mean(tmp_path: Path) -> None:
    tone = _tone(1.0, 44100, 1)[:, 0]
    src = _write(tmp_path / "in.flac", np.stack([tone, -tone], axis=1), 44100, "FLAC")

    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"))

    assert max(result.peaks) < 0.01


def test_peaks_follow_the_envelope(tmp_path: Path) -> None:
    audio = _tone(4.0, 48000, 2, amp=0.8)
    audio[: len(audio) // 2] = 0.0
    src = _write(tmp_path / "in.wav", audio, 48000, "WAV")

    peaks = decode_to_analysis(str(src), str(tmp_path / "out.flac"), peaks=64).peaks

    assert len(peaks) == 64
    assert max(peaks[:31]) < 0.01
    assert min(peaks[33:]) == pytest.approx(0.8, abs=0.02)


def test_out_of_range_and_nan_samples_are_tamed(tmp_path: Path) -> None:
    audio = _tone(1.0, 44100, 1, amp=2.0)
    audio[1000:1100] = np.nan
    src = tmp_path / "in.wav"
    sf.write(src, audio, 44100, subtype="FLOAT")

    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"))

    samples, _ = read_analysis(str(tmp_path / "out.flac"))
    assert np.isfinite(samples).all()
    assert max(result.peaks) == 1.0
    assert all(0.0 <= p <= 1.0 for p in result.peaks)


def test_probe_reads_the_header_without_decoding(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.flac", _tone(1.5, 48000, 2), 48000, "FLAC")

    info = probe(str(src))

    assert (info.format, info.sample_rate, info.channels, info.frames) == ("FLAC", 48000, 2, 72000)
    assert info.duration_s == pytest.approx(1.5)
    assert info.codec == "flac"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "WAV"),
        (b"FORM\x00\x00\x00\x00AIFFCOMM", "AIFF"),
        (b"fLaC\x00\x00\x00\x22", "FLAC"),
        (b"OggS\x00\x02" + bytes(22) + b"OpusHead", "OPUS"),
        (b"OggS\x00\x02" + bytes(22) + b"\x01vorbis", "OGG"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00", "MP3"),
        (b"\xff\xfb\x90\x64\x00", "MP3"),
        (b"\xff\xf1\x50\x80\x00", "AAC"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "M4A"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "WEBM"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9", "WMA"),
        (b"\x00\x01\x02\x03", None),
        (b"\xff\xfe" + "plain words".encode("utf-16-le"), None),
    ],
)
def test_sniff_reads_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"\x7fELF\x02\x01\x01" + bytes(9), "not audio: ELF executable"),
        (b"MZ\x90\x00\x03", "not audio: Windows executable"),
        (b"PK\x03\x04\x14\x00", "not audio: ZIP archive"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "not audio: PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not audio: PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "not audio: JPEG image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "not audio: WebP image"),
        (b"MThd\x00\x00\x00\x06", "not audio: MIDI file (notes, not sound)"),
        ("# Tonestream — notes\nÀ bientôt.\n".encode(), "not audio: looks like a text file"),
        (b"\xff\xfe" + "plain words".encode("utf-16-le"), "not audio: looks like a text file"),
    ],
)
def test_check_head_refuses_obvious_non_audio(head: bytes, reason: str) -> None:
    with pytest.raises(NotAudioError) as caught:
        check_head(head)
    assert caught.value.reason == reason


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    head = ("ü" * 3000).encode()[:4095]
    with pytest.raises(NotAudioError, match="text file"):
        check_head(head)


def test_empty_file(tmp_path: Path) -> None:
    src = tmp_path / "song.wav"
    src.write_bytes(b"")
    assert _reason(src, tmp_path / "out.flac") == "empty file (0 bytes)"


def test_random_bytes_named_mp3(tmp_path: Path) -> None:
    src = tmp_path / "song.mp3"
    src.write_bytes(b"\x00" + np.random.default_rng(7).bytes(20_000))
    reason = _reason(src, tmp_path / "out.flac")
    assert reason.startswith("unrecognised or corrupt audio data")


def test_text_file_named_flac(tmp_path: Path) -> None:
    src = tmp_path / "song.flac"
    src.write_text("Tonestream analyses music.\n" * 200, encoding="utf-8")
    assert _reason(src, tmp_path / "out.flac") == "not audio: looks like a text file"


def test_elf_named_wav(tmp_path: Path) -> None:
    src = tmp_path / "song.wav"
    src.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(2000))
    assert _reason(src, tmp_path / "out.flac") == "not audio: ELF executable"


def test_truncated_flac(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.flac", _tone(6.0, 44100, 2), 44100, "FLAC")
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.4)])
    reason = _reason(src, tmp_path / "out.flac")
    assert reason.startswith("truncated")
    assert "FLAC" in reason
    assert "6.0 s" in reason


def test_truncated_wav(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.wav", _tone(5.0, 44100, 2), 44100, "WAV")
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.4)])
    assert _reason(src, tmp_path / "out.flac") == (
        "truncated WAV: header promises 5.0 s but only 2.0 s could be decoded"
    )


@pytest.mark.parametrize(
    ("rate", "channels", "reason"),
    [
        (0, 2, "absurd header: sample rate 0 Hz is outside 4–384 kHz"),
        (10_000_000, 2, "absurd header: sample rate 10000000 Hz is outside 4–384 kHz"),
        (44100, 0, "absurd header: 0 channels (1–32 supported)"),
        (44100, 200, "absurd header: 200 channels (1–32 supported)"),
    ],
)
def test_absurd_wav_header(tmp_path: Path, rate: int, channels: int, reason: str) -> None:
    src = tmp_path / "song.wav"
    src.write_bytes(_wav_header(rate, channels))
    assert _reason(src, tmp_path / "out.flac") == reason


def test_wav_with_no_frames(tmp_path: Path) -> None:
    src = tmp_path / "song.wav"
    src.write_bytes(_wav_header(44100, 2, frames=0))
    assert _reason(src, tmp_path / "out.flac") == "no audio: the file contains 0 samples"


def test_too_long(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.ogg", _tone(3.0, 44100, 1), 44100, "OGG")
    reason = _reason(src, tmp_path / "out.flac", max_duration_s=1.0)
    assert reason == "too long: 3.0 s exceeds the 1.0 s limit"


# Real encodes of every format the decode stage claims: (encoder kind, rate, channels).
_ENCODES = [
    ("m4a-aac", 44100, 2),
    ("m4a-aac", 8000, 1),
    ("m4a-aac", 48000, 6),
    ("m4a-alac", 96000, 2),
    ("opus", 48000, 2),
    ("opus", 48000, 6),
    ("vorbis", 44100, 2),
    ("mp3", 44100, 2),
    ("mp3", 22050, 1),
    ("flac", 96000, 2),
    ("flac", 48000, 6),
    ("wav-s16", 8000, 1),
    ("wav-s24", 96000, 2),
    ("wav-f32", 48000, 6),
]
_LOSSY = ("m4a-aac", "opus", "vorbis", "mp3")


@pytest.mark.parametrize(("kind", "rate", "channels"), _ENCODES, ids=str)
def test_every_format_decodes_with_its_channels_and_rate(
    tmp_path: Path, kind: str, rate: int, channels: int
) -> None:
    audio = tone(3.0, rate, channels, freq=440.0, amp=0.5)
    src = encode(tmp_path / "in.bin", audio, rate, kind)
    dst = tmp_path / "out.flac"

    result = decode_to_analysis(str(src), str(dst))

    lossy = kind.startswith(_LOSSY)
    assert (result.source_sample_rate, result.source_channels) == (rate, channels)
    # lossy codecs add encoder delay and padding: two 1024-sample AAC frames are 0.26 s at 8 kHz
    assert result.duration_s == pytest.approx(3.0, abs=0.3 if lossy else 0.005)
    samples, _ = read_analysis(str(dst))
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * RATE / len(samples) == pytest.approx(440.0, abs=2.0)
    # The same tone on every channel: the meter's channel weights decide the level exactly.
    names = [c.name for c in av.AudioLayout({1: "mono", 2: "stereo", 6: "5.1"}[channels]).channels]
    meter = LoudnessMeter(rate, channel_weights(names))
    meter.add(audio)
    expected = meter.result()
    assert result.loudness.integrated_lufs == pytest.approx(
        expected.integrated_lufs,
        abs=0.6 if lossy else 0.02,  # LAME loses ~0.45 dB of a pure tone
    )
    assert result.loudness.sample_peak_dbfs == pytest.approx(-6.02, abs=2.0 if lossy else 0.01)


def _jpeg(size: int = 0) -> bytes:
    """A real JPEG (PIL), padded with an application segment's worth of bytes when `size` asks."""
    from PIL import Image  # noqa: PLC0415 - pillow comes with the clip extra

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buffer, "JPEG")
    image = buffer.getvalue()
    return image + bytes(max(0, size - len(image)))


_TAGS = {
    "title": "Night Drive",
    "artist": "Röyksopp",
    "album": "Melody A.M.",
    "album_artist": "Various Artists",
    "track": "3/12",
    "disc": "1/2",
    "date": "2001-05-03",
    "genre": "Electronic",
}


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("mp3", {"id3v2_version": "3"}),
        ("mp3", {"id3v2_version": "4"}),
        ("flac", {}),
        ("vorbis", {}),
        ("opus", {}),
        ("m4a-aac", {}),
    ],
    ids=["mp3-id3v2.3", "mp3-id3v2.4", "flac", "ogg-vorbis", "opus", "m4a"],
)
def test_tags_and_cover_art_are_read(tmp_path: Path, kind: str, options: dict[str, str]) -> None:
    cover = _jpeg()
    src = encode(
        tmp_path / "in.bin", tone(2.0, 48000), 48000, kind, tags=_TAGS, cover=cover, options=options
    )
    cover_path = tmp_path / "cover"

    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"), cover_path=str(cover_path))

    tags = result.metadata
    assert (tags.title, tags.artist, tags.album, tags.album_artist) == (
        "Night Drive",
        "Röyksopp",
        "Melody A.M.",
        "Various Artists",
    )
    assert (tags.track_number, tags.track_total, tags.disc_number, tags.year) == (3, 12, 1, 2001)
    assert tags.genre == "Electronic"
    assert tags.codec in {"mp3float", "mp3", "flac", "vorbis", "opus", "aac"}
    assert tags.bit_rate is not None
    assert tags.bit_rate > 0
    assert result.cover_type == "image/jpeg"
    assert cover_path.read_bytes() == cover


def test_a_huge_cover_is_not_kept(tmp_path: Path) -> None:
    src = encode(tmp_path / "in.flac", tone(1.0, 44100), 44100, "flac", cover=_jpeg(20 << 20))
    cover_path = tmp_path / "cover"

    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"), cover_path=str(cover_path))

    assert result.cover_type is None
    assert not cover_path.exists()
    assert result.duration_s == pytest.approx(1.0, abs=0.005)


def test_hostile_tags_become_plain_bounded_text(tmp_path: Path) -> None:
    hostile = {"title": "A\x07B\x1b[31m\u202eevil\n" + "x" * 5000, "track": "99999999999/-3"}
    src = encode(tmp_path / "in.flac", tone(1.0, 44100), 44100, "flac", tags=hostile)

    tags = decode_to_analysis(str(src), str(tmp_path / "out.flac")).metadata

    assert tags.title.startswith("A B [31mevil x")
    assert len(tags.title) <= 300
    assert tags.track_number is None


def test_a_corrupt_tag_block_still_decodes(tmp_path: Path) -> None:
    src = encode(tmp_path / "in.mp3", tone(2.0, 44100), 44100, "mp3", tags=_TAGS)
    data = bytearray(src.read_bytes())
    assert data[:3] == b"ID3"
    data[10:40] = b"\xff" * 30  # the first frames' ids and sizes are garbage now
    src.write_bytes(bytes(data))

    result = decode_to_analysis(str(src), str(tmp_path / "out.flac"))

    assert result.duration_s == pytest.approx(2.0, abs=0.12)
    assert result.loudness.integrated_lufs > -20


def test_a_truncated_m4a_is_refused(tmp_path: Path) -> None:
    src = encode(tmp_path / "in.m4a", tone(6.0, 44100), 44100, "m4a-alac")
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.5)])
    reason = _reason(src, tmp_path / "out.flac")
    assert reason.startswith(("truncated", "unrecognised or corrupt"))
