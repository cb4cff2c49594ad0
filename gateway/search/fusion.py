"""Weighted reciprocal-rank fusion: one ranking from several, by rank rather than raw score.

Scores of different inputs are not comparable (cosine in two vector spaces, keyword counts), but
ranks are: a track's fused score is Σ weight / (RRF_K + rank) over the inputs that found it, and
each hit remembers which inputs matched it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RRF_K = 60  # the usual constant: damps the head of each list so one input cannot dominate


@dataclass(frozen=True, slots=True)
class FusedHit:
    track_id: str
    score: float
    matched: tuple[str, ...]


def fuse(
    rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: int
) -> list[FusedHit]:
    """The `k` best tracks over `rankings` (input → track ids, best first), weighted per input."""
    scores: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    for name, ranking in rankings.items():
        weight = weights.get(name, 1.0)
        for rank, track_id in enumerate(ranking, start=1):
            scores[track_id] = scores.get(track_id, 0.0) + weight / (RRF_K + rank)
            matched.setdefault(track_id, []).append(name)
    best = sorted(scores, key=lambda track_id: (-scores[track_id], track_id))[:k]
    return [FusedHit(track_id, scores[track_id], tuple(matched[track_id])) for track_id in best]
