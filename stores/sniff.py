"""What the first bytes of an upload say it is — the file name's extension is never trusted.

Shared by the gateway (refuse non-audio before anything is stored) and the decode stage (pick the
decoder). Sniffing is cheap and runs before any decoder touches the file: obvious non-audio
(empty files, text, executables, archives, documents, images) is refused with a readable reason
instead of an opaque decoder error, and the format name picks the decoder and labels the track.
The WAV header is also read here, because decoders refuse some absurd headers with unhelpful
messages and silently shorten truncated WAV files, while the header itself states the rate,
channels and data size.
"""

from __future__ import annotations

import struct
from typing import NamedTuple


class NotAudioError(ValueError):
    """The bytes are certainly not decodable audio; `reason` is readable by the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


HEAD_BYTES = 4096
"""How many leading bytes the sniffers look at."""

# (offset, magic, format) — unambiguous signatures of audio containers.
_AUDIO_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"fLaC", "FLAC"),
    (0, b"RF64", "WAV"),
    (0, b"BW64", "WAV"),
    (0, b"riff\x2e\x91\xcf\x11", "W64"),
    (0, b".snd", "AU"),
    (0, b"caff", "CAF"),
    (0, b"#!AMR", "AMR"),
    (0, b"MAC ", "APE"),
    (0, b"wvpk", "WAVPACK"),
    (0, b"MPCK", "MUSEPACK"),
    (0, b"MP+", "MUSEPACK"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "WMA"),
)

# (offset, magic, what it is) — signatures of things that are certainly not audio.
_NON_AUDIO_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x7fELF", "ELF executable"),
    (0, b"MZ", "Windows executable"),
    (0, b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (0, b"\xce\xfa\xed\xfe", "Mach-O executable"),
    (0, b"\xca\xfe\xba\xbe", "Mach-O executable or Java class"),
    (0, b"\x00asm", "WebAssembly module"),
    (0, b"PK\x03\x04", "ZIP archive"),
    (0, b"PK\x05\x06", "ZIP archive"),
    (0, b"\x1f\x8b", "gzip archive"),
    (0, b"BZh", "bzip2 archive"),
    (0, b"\xfd7zXZ\x00", "xz archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (0, b"Rar!\x1a\x07", "RAR archive"),
    (0, b"\x28\xb5\x2f\xfd", "zstd archive"),
    (257, b"ustar", "tar archive"),
    (0, b"%PDF", "PDF document"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Microsoft Office document"),
    (0, b"SQLite format 3\x00", "SQLite database"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG image"),
    (0, b"\xff\xd8\xff", "JPEG image"),
    (0, b"GIF87a", "GIF image"),
    (0, b"GIF89a", "GIF image"),
    (0, b"II*\x00", "TIFF image"),
    (0, b"MM\x00*", "TIFF image"),
    (0, b"MThd", "MIDI file (notes, not sound)"),
)

_RIFF_FORMS = {b"WAVE": "WAV", b"AVI ": "AVI"}
_RIFF_NON_AUDIO = {b"WEBP": "WebP image", b"RMID": "MIDI file (notes, not sound)"}
_IFF_FORMS = {b"AIFF": "AIFF", b"AIFC": "AIFF", b"8SVX": "SVX", b"16SV": "SVX"}
_FORMS = {b"RIFF": _RIFF_FORMS, b"FORM": _IFF_FORMS}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
_WAV_PCM_TAGS = frozenset({1, 3, 0xFFFE})  # PCM, IEEE float, WAVE_FORMAT_EXTENSIBLE


class WavHeader(NamedTuple):
    """The `fmt ` chunk of a RIFF/WAVE header and, when it is within reach, the data size."""

    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    data_bytes: int | None
    data_offset: int | None  # where the data chunk's samples start

    @property
    def promised_frames(self) -> int | None:
        """Frames the data chunk claims, for PCM/float data with a real (non-streaming) size."""
        if (
            self.format_tag not in _WAV_PCM_TAGS
            or self.block_align <= 0
            or self.data_bytes in (None, 0, 0xFFFFFFFF)
        ):
            return None
        return self.data_bytes // self.block_align


def _has(head: bytes, offset: int, magic: bytes) -> bool:
    return head[offset : offset + len(magic)] == magic


def _id3_payload(head: bytes) -> bytes:
    """The bytes after an ID3v2 tag (empty when the tag runs past the head)."""
    size = 0
    for byte in head[6:10]:  # synchsafe integer: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return head[10 + size + footer :]


def _mpeg_sync(head: bytes) -> str | None:
    """MPEG audio (MP1/2/3) or ADTS AAC frame header — a weak 11-bit signature, checked last."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    if layer == 0:
        return "AAC" if head[1] & 0xF6 == 0xF0 else None
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or bitrate_index == 15 or rate_index == 3:
        return None
    return "MP3"


def _container(head: bytes) -> str | None:
    """Containers whose signature needs a second look: RIFF/IFF forms, ID3, Ogg, ISO, EBML."""
    forms = _FORMS.get(head[:4])
    if forms is not None:
        return forms.get(head[8:12])
    if _has(head, 0, b"ID3") and len(head) >= 10:
        inner = _id3_payload(head)
        return "FLAC" if _has(inner, 0, b"fLaC") else _mpeg_sync(inner) or "MP3"
    if _has(head, 0, b"OggS"):
        return "OPUS" if b"OpusHead" in head[:128] else "OGG"
    if _has(head, 4, b"ftyp") and head[8:12] not in _IMAGE_BRANDS:
        return "M4A" if head[8:12] in _M4A_BRANDS else "MP4"
    if _has(head, 0, b"\x1a\x45\xdf\xa3"):
        return "WEBM" if b"webm" in head[:64] else "MKA"
    return None


def _looks_like_text(head: bytes) -> bool:
    """Valid UTF-8 (or BOM-marked UTF-16) made of printable characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if head[0] == 0xFF else "utf-16-be"
        candidates = [head[2 : len(head) & ~1]]
    else:
        codec = "utf-8"
        body = head.removeprefix(b"\xef\xbb\xbf")
        candidates = [body[: len(body) - cut] for cut in range(4)]  # may end mid-character
    for candidate in candidates:
        try:
            text = candidate.decode(codec)
        except UnicodeDecodeError:
            continue
        odd = sum(1 for char in text if not char.isprintable() and char not in _TEXT_CONTROLS)
        return bool(text) and odd <= len(text) // 100
    return False


def _non_audio(head: bytes) -> str | None:
    """What the head is when it is certainly not audio, else None."""
    for offset, magic, what in _NON_AUDIO_MAGIC:
        if _has(head, offset, magic):
            return what
    if _has(head, 0, b"RIFF") and head[8:12] in _RIFF_NON_AUDIO:
        return _RIFF_NON_AUDIO[head[8:12]]
    if _has(head, 4, b"ftyp") and head[8:12] in _IMAGE_BRANDS:
        return "HEIF/AVIF image"
    if _looks_like_text(head):
        return "looks like a text file"
    return None


def _classify(head: bytes) -> tuple[str | None, str | None]:
    """(audio format, what it is if certainly not audio) — at most one of them is set."""
    for offset, magic, name in _AUDIO_MAGIC:
        if _has(head, offset, magic):
            return name, None
    if container := _container(head):
        return container, None
    if what := _non_audio(head):
        return None, what
    return _mpeg_sync(head), None


def sniff(head: bytes) -> str | None:
    """The audio format the leading bytes announce ("WAV", "FLAC", "MP3", "M4A"…), or None."""
    return _classify(head)[0]


def check_head(head: bytes) -> str | None:
    """Sniff the head; raise NotAudioError for an empty file or obvious non-audio."""
    if not head:
        raise NotAudioError("empty file (0 bytes)")
    name, what = _classify(head)
    if what:
        raise NotAudioError(f"not audio: {what}")
    return name


def wav_header(head: bytes) -> WavHeader | None:
    """Parse the RIFF/WAVE chunk list in the head; None if not WAV or no `fmt ` chunk in reach."""
    if not (_has(head, 0, b"RIFF") and _has(head, 8, b"WAVE")):
        return None
    fmt: tuple[int, int, int, int] | None = None
    data_bytes: int | None = None
    data_offset: int | None = None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(head):
            tag, channels, rate, _byte_rate, align = struct.unpack_from("<HHIIH", head, pos + 8)
            fmt = (tag, channels, rate, align)
        elif chunk == b"data":
            data_bytes, data_offset = size, pos + 8
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        return None
    return WavHeader(*fmt, data_bytes=data_bytes, data_offset=data_offset)
