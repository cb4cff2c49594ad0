"""The decode core: round trips, the analysis file, peaks, and every permanent refusal's reason."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from handlers.decode.core import DecodeError, decode_to_analysis, probe, read_analysis
from stores.sniff import NotAudioError, check_head, sniff

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
    assert info.decoder == "libsndfile"


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


def test_random_bytes_named_mp3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
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


def test_unsupported_format_without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    src = tmp_path / "song.m4a"
    src.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(4000))
    assert _reason(src, tmp_path / "out.flac") == (
        "unsupported format without ffmpeg: M4A needs ffmpeg, which is not installed"
    )


# ffmpeg is not installed here: stand-ins speak its command line and pipe protocol, so the
# subprocess plumbing (streaming, exit status, stderr, timeout, memory limit) is exercised for real.
_FAKE_FFMPEG = """
import array, json, math, resource, sys, time
argv = sys.argv[1:]
with open(sys.argv[0] + ".json", "w") as log:
    json.dump({"argv": argv, "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0]}, log)
MODE
rate = int(argv[argv.index("-ar") + 1])
wave = (0.25 * math.sin(2 * math.pi * 440 * n / rate) for n in range(int(1.5 * rate)))
tone = array.array("f", wave)
for start in range(0, len(tone), 4096):
    sys.stdout.buffer.write(tone[start : start + 4096].tobytes())
"""
_FAKE_FFPROBE = """
import json
stream = {"sample_rate": "44100", "channels": 2}
print(json.dumps({"streams": [stream], "format": {"duration": "1.5"}}))
"""


def _fake_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "", probe: bool = True
) -> Path:
    tools = {"ffmpeg": _FAKE_FFMPEG.replace("MODE", mode)}
    if probe:
        tools["ffprobe"] = _FAKE_FFPROBE
    for name, body in tools.items():
        script = tmp_path / name
        script.write_text(f"#!{sys.executable} -I\n{body}")
        script.chmod(0o755)
    monkeypatch.setattr(
        shutil, "which", lambda name: str(tmp_path / name) if name in tools else None
    )
    src = tmp_path / "song.m4a"
    src.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(4000))
    return src


def test_ffmpeg_fallback_streams_the_analysis_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _fake_tools(tmp_path, monkeypatch)
    dst = tmp_path / "out.flac"

    result = decode_to_analysis(str(src), str(dst), peaks=16)

    assert (result.source_format, result.source_sample_rate, result.source_channels) == (
        "M4A",
        44100,
        2,
    )
    assert result.duration_s == pytest.approx(1.5)
    assert max(result.peaks) == pytest.approx(0.25, abs=0.01)
    samples, rate = read_analysis(str(dst))
    assert (len(samples), rate) == (round(1.5 * RATE), RATE)
    call = json.loads((tmp_path / "ffmpeg.json").read_text())
    assert call["argv"][:5] == ["-v", "error", "-nostdin", "-i", f"file:{src}"]
    assert call["argv"][-7:] == ["-f", "f32le", "-ac", "1", "-ar", str(RATE), "pipe:1"]
    assert call["rlimit_as"] == 2 << 30


def test_ffprobe_duration_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _fake_tools(tmp_path, monkeypatch)
    assert (
        _reason(src, tmp_path / "out.flac", max_duration_s=1.0)
        == "too long: 1.5 s exceeds the 1.0 s limit"
    )
    assert not (tmp_path / "ffmpeg.json").exists()


def test_ffmpeg_output_is_capped_at_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _fake_tools(tmp_path, monkeypatch, probe=False)
    assert (
        _reason(src, tmp_path / "out.flac", max_duration_s=1.0)
        == "too long: exceeds the 1.0 s limit"
    )


def test_ffmpeg_failure_reports_its_last_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mode = (
        'sys.stderr.write("[mov,mp4] moov atom not found\\n'
        'song.m4a: Invalid data found when processing input\\n"); sys.exit(1)'
    )
    src = _fake_tools(tmp_path, monkeypatch, mode)
    assert _reason(src, tmp_path / "out.flac") == (
        "ffmpeg could not decode the file: song.m4a: Invalid data found when processing input"
    )


def test_ffmpeg_with_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _fake_tools(
        tmp_path, monkeypatch, 'sys.stderr.write("Output file is empty\\n"); sys.exit(0)'
    )
    assert _reason(src, tmp_path / "out.flac") == "ffmpeg decoded no audio: Output file is empty"


def test_ffmpeg_is_killed_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _fake_tools(tmp_path, monkeypatch, "time.sleep(60)")
    assert _reason(src, tmp_path / "out.flac", timeout_s=1.0) == "ffmpeg timed out after 1 s"
