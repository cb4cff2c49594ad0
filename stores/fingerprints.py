"""The fingerprint index: landmark hashes of every track, searchable by the hashes of a clip.

"Which track contains these hashes, at one time offset?" is an inverted index from hash to
(track, time). Qdrant's sparse vectors are exactly such an index, in a real engine that runs
embedded (Qdrant Edge, in-process) and as a distributed cluster with the same layout:

- one point per (tenant, track, WINDOW_S window of the track): a sparse vector `fp` whose
  indices are the window's distinct hashes (value 1), payload `tenant`, `track_id`, `window`
  and `lm`, the window's landmarks — (hash << 22 | frame) as little-endian uint64, base64;
- a clip's distinct hashes are one sparse query (dot product = shared hashes), filtered by
  tenant: the best CANDIDATE_WINDOWS windows come back with their landmarks, and the exact
  time-consistency check (`handlers.fingerprint.core.rank`) runs on those alone.

Why windows, not whole tracks: a whole track shares hashes with any clip by sheer size; a
window the length of a clip ranks by what the clip really shares with that stretch of music.
Why Qdrant, not the catalog: measured on SecantusDB (the embedded Mongo server) a hash-keyed
posting collection loads at ~2k documents/s and answers a 500-hash lookup in ~1 s; the sparse
index answers in milliseconds. Edge is synchronous: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from handlers.fingerprint import core

VECTOR = "fp"
WINDOW_S = 10.0
CANDIDATE_WINDOWS = 64
PROBE_HASHES = 300
DUPLICATE_SHIFT_S = 0.2  # excerpts of one recording agree on its trim within this
_FRAME_BITS = 22  # 4.2M frames of 23 ms: 27 hours per track
_NAMESPACE = uuid.UUID("6f1c2a8e-4d0b-5e8f-9a51-0c3f1b7d2e64")


def _config() -> qe.EdgeConfig:
    return qe.EdgeConfig(
        sparse_vectors={VECTOR: qe.EdgeSparseVectorParams()},
        on_disk_payload=True,
    )


def _tenant_track(tenant: str, track_id: str | None = None) -> qe.Filter:
    must = [qe.FieldCondition(key="tenant", match=qe.MatchValue(tenant))]
    if track_id is not None:
        must.append(qe.FieldCondition(key="track_id", match=qe.MatchValue(track_id)))
    return qe.Filter(must=must)  # type: ignore[arg-type]


def pack(hashes: core.Hashes, times: core.Times) -> str:
    packed = (hashes.astype(np.uint64) << np.uint64(_FRAME_BITS)) | times.astype(np.uint64)
    return base64.b64encode(packed.astype("<u8").tobytes()).decode()


def unpack(text: str) -> tuple[core.Hashes, core.Times]:
    packed = np.frombuffer(base64.b64decode(text), dtype="<u8")
    hashes = (packed >> np.uint64(_FRAME_BITS)).astype(np.uint32)
    times = (packed & np.uint64((1 << _FRAME_BITS) - 1)).astype(np.int32)
    return hashes, times


def _probe(distinct: core.Hashes) -> core.Hashes:
    """At most PROBE_HASHES of a clip's distinct hashes, a fixed pseudo-random choice.

    The sparse search costs the summed posting lengths of its indices, so it gets a sample; the
    exact check then uses every hash of the clip on the windows found. The choice depends on
    the hash values alone (a multiplicative scramble), so it is spread over the whole clip.
    """
    if distinct.size <= PROBE_HASHES:
        return distinct
    scrambled = (distinct.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return np.sort(distinct[np.argsort(scrambled)[:PROBE_HASHES]])


@dataclass(frozen=True)
class Identified:
    """A match with the track it names."""

    track_id: str
    offset_s: float
    hits: int
    confidence: float
    coverage: float


# -- what every backend shares: the points written, the query, the vote, the duplicate check --
@dataclass(frozen=True)
class Window:
    """One point to write: a WINDOW_S window of a track, its distinct hashes and its landmarks."""

    id: str
    indices: list[int]
    payload: dict[str, Any]


def window_points(
    tenant: str, track_id: str, hashes: core.Hashes, times: core.Times
) -> list[Window]:
    """The track's windows; ids derive from (tenant, track_id, window), so a rewrite replaces."""
    window_frames = round(WINDOW_S / core.FRAME_S)
    points = []
    for start, stop in core.windows(times, window_frames):
        h, t = hashes[start:stop], times[start:stop]
        window = int(t[0]) // window_frames
        points.append(
            Window(
                id=str(uuid.uuid5(_NAMESPACE, f"{tenant}:{track_id}:{window}")),
                indices=np.unique(h).tolist(),
                payload={
                    "tenant": tenant,
                    "track_id": track_id,
                    "window": window,
                    "lm": pack(h, t),
                },
            )
        )
    return points


def probe(hashes: core.Hashes) -> list[int]:
    """The sparse query's indices for a clip ([] when it has no hashes)."""
    distinct = np.unique(hashes)
    return _probe(distinct).tolist() if distinct.size else []


def identified(
    hashes: core.Hashes,
    times: core.Times,
    payloads: list[dict[str, Any]],
    *,
    limit: int = 5,
    min_hits: int = core.MIN_HITS,
    min_share: float = core.MIN_SHARE,
) -> list[Identified]:
    """The exact time-consistency vote of the clip over the windows the sparse query found."""
    distinct = np.unique(hashes)
    track_ids: list[str] = []
    number: dict[str, int] = {}
    parts_h, parts_k, parts_t = [], [], []
    for payload in payloads:
        track_id = str(payload["track_id"])
        n = number.setdefault(track_id, len(number))
        if n == len(track_ids):
            track_ids.append(track_id)
        h, t = unpack(str(payload["lm"]))
        parts_h.append(h)
        parts_t.append(t)
        parts_k.append(np.full(h.size, n, dtype=np.int64))
    if not parts_h or distinct.size == 0:
        return []
    all_h = np.concatenate(parts_h)
    shared = np.isin(all_h, distinct)
    matches = core.rank(
        hashes,
        times,
        all_h[shared],
        np.concatenate(parts_k)[shared],
        np.concatenate(parts_t)[shared],
        limit=limit,
        min_hits=min_hits,
        min_share=min_share,
    )
    return [
        Identified(
            track_id=track_ids[m.track],
            offset_s=m.offset_s,
            hits=m.hits,
            confidence=m.confidence,
            coverage=m.coverage,
        )
        for m in matches
    ]


def excerpts(hashes: core.Hashes, times: core.Times) -> list[tuple[int, core.Hashes, core.Times]]:
    """(start frame, hashes, times from 0) of the WINDOW_S excerpts at a quarter, half and three
    quarters of a track, which `duplicate_group` needs found in another track."""
    if times.size == 0:
        return []
    span = int(times[-1])
    length = round(WINDOW_S / core.FRAME_S)
    starts = sorted({max(0, round(span * q) - length // 2) for q in (0.25, 0.5, 0.75)})
    found = []
    for start in starts:
        inside = (times >= start) & (times < start + length)
        found.append((start, hashes[inside], times[inside] - start))
    return found


def names_another(track_id: str, matches: list[Identified]) -> bool:
    """Whether an excerpt of `track_id` found any other track. When it did not, no track can be
    a duplicate (`duplicate_group` needs every excerpt to find it): the rest need no lookup."""
    return any(match.track_id != track_id for match in matches)


def duplicate_group(track_id: str, starts: list[int], found: list[list[Identified]]) -> list[str]:
    """Other tracks holding the same recording as `track_id`, from what each excerpt found.

    A track that every excerpt finds, at offsets that differ from the excerpts' starts by one
    constant (a trim shifts them all alike), is a duplicate: another encode, bit rate or trim.
    A track that merely quotes a passage matches one excerpt, not all of them.
    """
    shifts: dict[str, list[float]] = {}
    for start, matches in zip(starts, found, strict=True):
        for match in matches:
            if match.track_id != track_id:
                shifts.setdefault(match.track_id, []).append(match.offset_s - start * core.FRAME_S)
    return sorted(
        other
        for other, seen in shifts.items()
        if len(seen) == len(starts) and max(seen) - min(seen) <= DUPLICATE_SHIFT_S
    )


class FingerprintIndex:
    """Landmark hashes of tracks in a Qdrant Edge shard at `path` (created on first open)."""

    def __init__(self, path: Path) -> None:
        if (path / "edge_config.json").exists() or any(path.glob("segments*")):
            self._shard = qe.EdgeShard.load(str(path))
        else:
            path.mkdir(parents=True, exist_ok=True)
            self._shard = qe.EdgeShard.create(str(path), _config())
            for field in ("tenant", "track_id"):
                self._shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                )
        self.path = path

    def close(self) -> None:
        self._shard.close()

    def add(self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> int:
        """Replace the track's fingerprints with these; returns the number of windows written.

        Idempotent: window point ids derive from (tenant, track_id, window), and windows past
        the new end are deleted first, so a replay or a re-fingerprint leaves one copy.
        """
        self.remove(tenant, track_id)
        points = [
            qe.Point(
                id=w.id,
                vector={VECTOR: qe.SparseVector(indices=w.indices, values=[1.0] * len(w.indices))},
                payload=w.payload,
            )
            for w in window_points(tenant, track_id, hashes, times)
        ]
        for first in range(0, len(points), 256):
            self._shard.update(qe.UpdateOperation.upsert_points(points[first : first + 256]))
        return len(points)

    def remove(self, tenant: str, track_id: str) -> None:
        self._shard.update(
            qe.UpdateOperation.delete_points_by_filter(_tenant_track(tenant, track_id))
        )

    def flush(self) -> None:
        self._shard.flush()

    def count(self, tenant: str, track_id: str | None = None) -> int:
        """Windows stored for the tenant (or one of its tracks)."""
        return self._shard.count(
            qe.CountRequest(exact=True, filter=_tenant_track(tenant, track_id))
        )

    def optimize(self) -> None:
        """Build the sparse index over freshly written points (Edge's optimizers run on call):
        after a bulk load; appended points are searched unindexed until then (≈ 2× slower)."""
        self._shard.optimize()

    def identify(
        self,
        tenant: str,
        hashes: core.Hashes,
        times: core.Times,
        *,
        limit: int = 5,
        min_hits: int = core.MIN_HITS,
        min_share: float = core.MIN_SHARE,
    ) -> list[Identified]:
        """Tracks of `tenant` containing the clip, best first; [] when nothing clears the bar."""
        indices = probe(hashes)
        if not indices:
            return []
        found = self._shard.query(
            qe.QueryRequest(
                limit=CANDIDATE_WINDOWS,
                query=qe.Query.Nearest(
                    qe.SparseVector(indices=indices, values=[1.0] * len(indices)), using=VECTOR
                ),
                filter=_tenant_track(tenant),
                with_payload=True,
            )
        )
        payloads = [point.payload or {} for point in found]
        return identified(
            hashes, times, payloads, limit=limit, min_hits=min_hits, min_share=min_share
        )

    def duplicates(
        self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times
    ) -> list[str]:
        """Other tracks of `tenant` holding the same recording (see `duplicate_group`)."""
        parts = excerpts(hashes, times)
        found: list[list[Identified]] = []
        for _, h, t in parts:
            found.append(self.identify(tenant, h, t, limit=10))
            if not names_another(track_id, found[-1]):
                return []
        return duplicate_group(track_id, [start for start, _, _ in parts], found)

    def size_bytes(self) -> int:
        """Bytes the shard occupies on disk (allocated blocks: its files are sparse)."""
        return sum(f.stat().st_blocks * 512 for f in self.path.rglob("*") if f.is_file())
