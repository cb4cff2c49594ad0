"""The LLM tagging contract: the messages we send, the JSON reply we accept, and the cache key.

Kept apart from the HTTP chain so the contract can be read and tested without a server. Bump
PROMPT_VERSION whenever the prompt or the reply schema changes: it is part of the cache key, so an
answer to the old question is never served for the new one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

import msgspec

from handlers.tagging.vocabulary import (
    BRIGHTNESS_CLASSES,
    ENERGY_CLASSES,
    TEMPO_BOUNDS,
    TEMPO_CLASSES,
    Brightness,
    Energy,
    TempoClass,
)
from schemas.payloads import Features, Tags, TagScores

PROMPT_VERSION = "tags-v2"
MODEL_TAGS_IN_PROMPT = 12  # the strongest model tags shown to the LLM, per model
MAX_DESCRIPTION_CHARS = 300
MAX_MOODS = 8
MAX_GENRES = 6

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ReplyError(ValueError):
    """The model's answer is not the JSON object the prompt asked for."""


class TagReply(msgspec.Struct, kw_only=True, frozen=True):
    """The JSON object the model must answer with (unknown extra keys are ignored)."""

    mood: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=MAX_MOODS)]
    genre: Annotated[list[Label], msgspec.Meta(max_length=MAX_GENRES)]
    energy: Energy
    brightness: Brightness
    tempo_class: TempoClass
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]

    def to_tags(self, source: str) -> Tags:
        return Tags(
            mood=self.mood,
            genre=self.genre,
            energy=self.energy,
            brightness=self.brightness,
            tempo_class=self.tempo_class,
            description=self.description,
            source=source,
        )


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(f'"{value}"' for value in values)


_TEMPO_RULE = ", ".join(f"{name} below {bound:g} BPM" for bound, name in TEMPO_BOUNDS)

SYSTEM_PROMPT = f"""You tag music for a search index. You receive the measured audio features of \
one track as JSON (seconds, BPM, EBU R128 LUFS/LU/dBTP, Hz; energy is mean RMS of full-scale \
audio 0-1; onset_rate is onsets per second; chroma bins run C, C#, D ... B), its file name, and \
the strongest tags of two trained audio taggers with their probabilities (msd: Last.fm tags of \
the Million Song Dataset; mtt: MagnaTagATune tags) — the best evidence for genre and mood.
Answer with exactly one JSON object and nothing else:
{{"mood": [1-{MAX_MOODS} lowercase mood words], \
"genre": [0-{MAX_GENRES} lowercase genre names, most likely first], \
"energy": {_choices(ENERGY_CLASSES)}, \
"brightness": {_choices(BRIGHTNESS_CLASSES)}, \
"tempo_class": {_choices(TEMPO_CLASSES)}, \
"description": "one sentence of at most {MAX_DESCRIPTION_CHARS} characters"}}
tempo_class: {_TEMPO_RULE}, very fast otherwise; unknown when tempo_confidence is 0.
Base every label on the features; treat the file name as a hint only."""


def feature_digest(features: Features, scores: TagScores | None = None) -> str:
    """Cache key: sha256 (hex) of the prompt version, the features and the model tags shown."""
    payload = PROMPT_VERSION.encode() + b"\n" + msgspec.json.encode(features)
    payload += b"\n" + msgspec.json.encode(model_tags(scores))
    return hashlib.sha256(payload).hexdigest()


def model_tags(scores: TagScores | None) -> dict[str, dict[str, float]]:
    """The strongest MODEL_TAGS_IN_PROMPT tags of each model, probability rounded to 2 places."""
    if scores is None:
        return {}
    return {
        name: {
            tag: round(p, 2)
            for tag, p in sorted(probs.items(), key=lambda item: -item[1])[:MODEL_TAGS_IN_PROMPT]
        }
        for name, probs in (("msd", scores.msd), ("mtt", scores.mtt))
    }


def build_messages(
    features: Features, filename: str, scores: TagScores | None = None
) -> list[dict[str, str]]:
    """System prompt plus one user message: file name, compact rounded features, model tags."""
    compact = msgspec.json.encode(_rounded(msgspec.to_builtins(features))).decode()
    user = f"File name: {filename or '(none)'}\nFeatures: {compact}"
    if scores is not None:
        user += f"\nModel tags: {msgspec.json.encode(model_tags(scores)).decode()}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.DOTALL)
_ENUM_FIELDS = ("energy", "brightness", "tempo_class")


def parse_reply(content: str) -> TagReply:
    """Validate a model's message content; tolerates ```json fences and enum case or spacing."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ReplyError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ReplyError(f"expected a JSON object, got {type(raw).__name__}")
    try:
        return msgspec.convert(_normalised(raw), TagReply)
    except msgspec.ValidationError as exc:
        raise ReplyError(str(exc)) from None


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """Lowercase and trim the labels, drop blank and repeated ones, trim the description."""
    out = dict(raw)
    for field in _ENUM_FIELDS:
        if isinstance(out.get(field), str):
            out[field] = out[field].strip().lower()
    for field in ("mood", "genre"):
        labels = out.get(field)
        if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
            out[field] = list(dict.fromkeys(v.strip().lower() for v in labels if v.strip()))
    if isinstance(out.get("description"), str):
        out["description"] = out["description"].strip()
    return out


def _rounded(value: Any) -> Any:
    """Round floats to 3 decimals all the way down: fewer tokens, same information."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
