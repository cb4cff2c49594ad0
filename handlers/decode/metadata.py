"""A file's own tags (title, artist, album…) and cover art, read defensively from the container.

FFmpeg's demuxers already unify ID3v2, Vorbis comments, MP4 atoms and APE tags into one key/value
dictionary, but keys keep their source spelling (`ALBUMARTIST`, `TRACKNUMBER`, `date`…) and values
are whatever the tagger wrote. Tags are untrusted input: every value is cut to a sane length,
stripped of control characters and parsed leniently, so a hostile or broken tag yields an empty
field, never a failed decode. Cover art is the container's attached picture, kept only when it is a
real JPEG/PNG/GIF/WebP image no larger than MAX_COVER_BYTES (a 20 MB "cover" is not stored).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import msgspec

from schemas.payloads import FileMetadata

MAX_TAG_CHARS = 300
MAX_COVER_BYTES = 2 * 1024 * 1024
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_ALIASES = {
    "title": ("title", "tit2"),
    "artist": ("artist", "tpe1", "author"),
    "album": ("album", "talb"),
    "album_artist": ("album_artist", "albumartist", "album artist", "tpe2"),
    "track": ("track", "tracknumber", "trck"),
    "track_total": ("tracktotal", "totaltracks"),
    "disc": ("disc", "discnumber", "tpos"),
    "year": ("date", "year", "tdrc", "tyer", "originaldate"),
    "genre": ("genre", "tcon"),
}
_NUMBER = re.compile(r"\d+")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_ID3_GENRE = re.compile(r"^\((\d+)\)")


def read_tags(*sources: Mapping[str, str], codec: str, bit_rate: int | None) -> FileMetadata:
    """Merge tag dictionaries (earlier sources win) into FileMetadata; never raises on values."""
    tags: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            tags.setdefault(key.strip().lower(), value)

    def first(field: str) -> str:
        for alias in _ALIASES[field]:
            text = clean_text(tags.get(alias, ""))
            if text:
                return text
        return ""

    track, track_total = _position(first("track"))
    disc, _ = _position(first("disc"))
    return FileMetadata(
        title=first("title"),
        artist=first("artist"),
        album=first("album"),
        album_artist=first("album_artist"),
        track_number=track,
        track_total=track_total or _position(first("track_total"))[0],
        disc_number=disc,
        year=_year(first("year")),
        genre=_ID3_GENRE.sub("", first("genre")).strip(),
        codec=clean_text(codec),
        bit_rate=bit_rate if bit_rate and 0 < bit_rate < 100_000_000 else None,
    )


def with_cover(metadata: FileMetadata, cover_key: str, cover_type: str) -> FileMetadata:
    return msgspec.structs.replace(metadata, cover_key=cover_key, cover_type=cover_type)


def clean_text(value: object) -> str:
    """A tag value as one line of printable text, at most MAX_TAG_CHARS long."""
    text = str(value)[: MAX_TAG_CHARS * 4]
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) not in ("Cf", "Cs", "Co", "Cn") or c == " "
    )
    return " ".join(kept.split())[:MAX_TAG_CHARS]


def cover_type(data: bytes) -> str | None:
    """The image MIME type when `data` is an acceptable cover, else None."""
    if not data or len(data) > MAX_COVER_BYTES:
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _IMAGE_MAGIC if data.startswith(magic)), None)


def _position(text: str) -> tuple[int | None, int | None]:
    """'3', '3/12', '03 of 12' → (3, 12); nonsense → (None, None)."""
    numbers = [int(n) if len(n) <= 4 and int(n) > 0 else None for n in _NUMBER.findall(text)[:2]]
    if not numbers or numbers[0] is None:
        return None, None
    return numbers[0], numbers[1] if len(numbers) > 1 else None


def _year(text: str) -> int | None:
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None
