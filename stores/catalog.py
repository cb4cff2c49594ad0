"""The track catalog: one document per (tenant, track_id) in MongoDB, via PyMongo's async API.

The same code talks to a production replica set and to the embedded SecantusDB server. Writes
are idempotent so redelivered events are harmless: tracks are upserted under a unique
(tenant, track_id) index, and the status projection of progress events only moves forward in
the PROGRESS stream's order (its sequence numbers, never a publisher's clock) — a stale or
redelivered event never overwrites a newer one.

A track's projection fields:
- `stages.<stage>` = {state, percent, message, at, seq}: the latest progress event of that stage;
- `status`: the furthest finished stage's name ("indexed" once stage "indexing" finished), or
  "failed", with `failure_reason` and `failed_stage`; `status_seq` orders status changes. A
  `failed` never replaces `indexed`: a replay that fails leaves the indexed track as it was.
Deleted tracks are remembered (tombstones) so late or replayed events never re-create them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from schemas.api import SearchFilters
from schemas.events import Progress
from stores import text_search
from stores.catalog_order import (
    COLUMNS,
    DEFAULT_SORT,
    TrackOrder,
    bounds_update,
    decode_cursor,
    encode_cursor,
    first_bounds,
    page_projection,
    parse_sort,
    slice_indexes,
    sort_indexes,
    sort_spec,
    ties_after,
    without_value,
)
from stores.catalog_queries import (
    SEARCH_SOURCES,
    SEARCH_VERSION,
    UPLOADED,
    filter_span,
    index_shaped,
    keyed_indexes,
    keyed_split,
    search_fields,
    track_query,
)
from stores.catalog_slices import SliceWalk, first_end, narrowed
from streams.names import CHAIN_STAGES, FOLLOW_UP_STAGES

log = structlog.get_logger("tonestream.catalog")

TRACKS = "tracks"
BOUNDS = "sort_bounds"  # per tenant: each sort column's lowest and highest value, track count
DELETED = "deleted_tracks"  # tombstones: replays must not bring a deleted track back
INDEXING_STAGE = "indexing"
INDEXED_STATUS = "indexed"
FAILED_STATUS = "failed"

Document = dict[str, Any]


def track_key(tenant: str, track_id: str) -> Document:
    """The filter naming one track, track id first: with further conditions beside it (a stale
    event check, a status guard), the embedded server (SecantusDB) looks up the first field that
    has an index of its own, so the `track` index finds the one document; led by `tenant`, it
    would read every document of the tenant for each progress event. MongoDB plans either."""
    return {"track_id": track_id, "tenant": tenant}


def _not_after(field: str, seq: int) -> Document:
    """Matches documents whose `field` is missing or not after stream sequence `seq`."""
    return {field: {"$not": {"$gt": seq}}}


def stage_update(progress: Progress, seq: int) -> tuple[Document, Document]:
    """Filter and update recording `progress` (PROGRESS stream sequence `seq`) as its stage's
    latest state, unless a later event of that stage was already recorded."""
    key = track_key(progress.tenant, progress.track_id)
    stage = {
        "state": progress.state,
        "percent": progress.percent,
        "message": progress.message,
        "at": progress.at,
        "seq": seq,
    }
    return (
        key | _not_after(f"stages.{progress.stage}.seq", seq),
        {"$set": {f"stages.{progress.stage}": stage}},
    )


def _status_of(stage: str) -> str:
    return INDEXED_STATUS if stage == INDEXING_STAGE else stage


# statuses in pipeline order: a finished stage never moves the status back (a replay re-runs
# an earlier stage of an indexed track, which stays indexed)
PIPELINE_STATUSES = [_status_of(stage) for stage in CHAIN_STAGES]
UPLOADED_STATUS = "uploaded"  # what the gateway records with the upload
# every status short of an end (None: no status yet), listed so that an index can find them
UNFINISHED_STATUSES = [
    None,
    UPLOADED_STATUS,
    *(s for s in PIPELINE_STATUSES if s != INDEXED_STATUS),
]


def status_update(progress: Progress, seq: int) -> tuple[Document, Document] | None:
    """Filter and update moving the top-level status, or None if `progress` does not change it."""
    key = track_key(progress.tenant, progress.track_id)
    if progress.stage in FOLLOW_UP_STAGES:
        return None  # the track stays as indexing left it; `stages.<stage>` tells the rest
    if progress.state == "finished":
        status = _status_of(progress.stage)
        if status in PIPELINE_STATUSES:
            later = PIPELINE_STATUSES[PIPELINE_STATUSES.index(status) + 1 :]
            key |= {"status": {"$nin": later}}
        update: Document = {
            "$set": {"status": status, "status_at": progress.at, "status_seq": seq},
            "$unset": {"failure_reason": "", "failed_stage": ""},
        }
    elif progress.state == "failed":
        key |= {"status": {"$ne": INDEXED_STATUS}}  # a failed replay keeps the track indexed
        update = {
            "$set": {
                "status": FAILED_STATUS,
                "status_at": progress.at,
                "status_seq": seq,
                "failure_reason": progress.message or f"{progress.stage} failed",
                "failed_stage": progress.stage,
            }
        }
    else:
        return None
    return key | _not_after("status_seq", seq), update


BACKFILL_BATCH = 500
FIRST_ENDS_KEPT = 4096


def upload_document(tenant: str, track_id: str, fields: Document) -> Document:
    """The document recording an upload (see Catalog.create_track)."""
    return (
        fields
        | {
            "_id": f"{tenant}:{fields['sha256']}",
            "tenant": tenant,
            "track_id": track_id,
        }
        | search_fields(fields)
    )


def _uploaded(document: Document) -> bool:
    """The document matches UPLOADED (a recorded upload, not a status projection alone)."""
    return "created_at" in document


class Catalog:
    """Tracks of every tenant; `db` is exposed for the other catalog collections (users, keys)."""

    def __init__(self, client: AsyncMongoClient[Document], db_name: str) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client[db_name]
        self.tracks: AsyncCollection[Document] = self.db[TRACKS]
        self.deleted: AsyncCollection[Document] = self.db[DELETED]
        self.bounds: AsyncCollection[Document] = self.db[BOUNDS]
        # where a listing's first page ended (list_tracks), by sort and query (the tenant's):
        # the same first page again reads one slice, up to there
        self._first_ends: dict[str, Any] = {}

    @classmethod
    async def open(cls, url: str, db_name: str) -> Catalog:
        client: AsyncMongoClient[Document] = AsyncMongoClient(url)
        await client.aconnect()
        return cls(client, db_name)

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.db.command("ping")

    async def ensure_indexes(self) -> None:
        await self.tracks.create_index(
            [("tenant", ASCENDING), ("track_id", ASCENDING)], unique=True, name="tenant_track"
        )
        await self.tracks.create_index([("track_id", ASCENDING)], name="track")  # track_key
        await self.tracks.create_index(
            [("tenant", ASCENDING), ("status", ASCENDING)], name="tenant_status"
        )
        await self.tracks.create_index(
            [("tenant", ASCENDING), ("features.tempo_bpm", ASCENDING)], name="tenant_tempo"
        )
        await self.tracks.create_index(
            [("tenant", ASCENDING), ("created_at", DESCENDING), ("track_id", DESCENDING)],
            name="tenant_created",
        )
        await self.tracks.create_index(
            [("tenant", ASCENDING), ("keywords", ASCENDING)], name="tenant_keywords"
        )
        existing = await self.tracks.index_information()
        for name, keys in sort_indexes().items():
            await self._replace_index(existing, name, keys)
        # the repair sweep (unfinished_tracks): the few unfinished tracks, not all of them
        await self.tracks.create_index(
            [("status", ASCENDING), ("created_at", ASCENDING)], name="status_created"
        )
        # the slices of a listing (list_tracks) with conditions beside the tenant: the embedded
        # server reads them through the index leading on the sliced field alone; a MongoDB
        # planner prefers the tenant's own
        await self.tracks.create_index([("created_at", DESCENDING)], name="created")
        for name, keys in slice_indexes().items():
            await self._replace_index(existing, name, keys)
        for name, keys in keyed_indexes().items():
            await self.tracks.create_index(keys, name=name)
        await self.tracks.create_index([("search_version", ASCENDING)], name="search_version")
        await self._backfill_keywords()
        await self._backfill_bounds()

    async def _replace_index(
        self, existing: Mapping[str, Any], name: str, keys: list[tuple[str, int]]
    ) -> None:
        """Create the index `name` on `keys`, first dropping one of that name on other keys
        among the `existing` ones (a sort whose fields changed: text sorts moved to
        `sort_text`)."""
        held = existing.get(name)
        if held is not None and [tuple(key) for key in held["key"]] != keys:
            await self.tracks.drop_index(name)
        await self.tracks.create_index(keys, name=name)

    async def _backfill_keywords(self) -> int:
        """Give tracks written before this text search existed its fields (once). They are
        found through the `search_version` index — an older version, or none (null) — as a
        `$ne` would read every document on each start (20–30 s at 100k on SecantusDB)."""
        updates: list[UpdateOne] = []
        done = 0
        async for document in self._stale_search_fields():
            updates.append(UpdateOne({"_id": document["_id"]}, {"$set": search_fields(document)}))
            if len(updates) >= BACKFILL_BATCH:
                done += (await self.tracks.bulk_write(updates)).modified_count
                updates = []
        if updates:
            done += (await self.tracks.bulk_write(updates)).modified_count
        return done

    async def _stale_search_fields(self) -> AsyncIterator[Document]:
        """The uploaded tracks whose search fields are not this version's, read by index."""
        projection = SEARCH_SOURCES | {"created_at": True}
        for version in (None, {"$lt": SEARCH_VERSION}):
            async for document in self.tracks.find({"search_version": version}, projection):
                if _uploaded(document):
                    yield document

    async def _backfill_bounds(self) -> None:
        """Give a catalog written before the bounds were kept its bounds (once)."""
        if await self.bounds.find_one({}, projection={"_id": True}) is not None:
            return
        projection = {"tenant": True} | {column.fields[0]: True for column in COLUMNS.values()}
        pending: dict[str, list[Document]] = {}  # by tenant, written in batches
        async for document in self.tracks.find(UPLOADED, projection=projection):
            batch = pending.setdefault(document["tenant"], [])
            batch.append(document)
            if len(batch) >= BACKFILL_BATCH:
                await self.note_written(document["tenant"], batch, added=len(batch))
                batch.clear()
        for tenant, batch in pending.items():
            await self.note_written(tenant, batch, added=len(batch))

    async def note_written(self, tenant: str, documents: list[Document], added: int = 0) -> None:
        """Widen the tenant's bounds (BOUNDS) to hold these documents' values; `added` of them
        are new tracks. The bounds only guide where slices lie (list_tracks reads every value
        outside them too): a deletion leaves them wider than they need be, and a failed update
        is logged, not raised, so the write it follows stands alone."""
        update = bounds_update(documents, added)
        if update is None:
            return
        try:
            await self.bounds.update_one({"_id": tenant}, update, upsert=True)
        except PyMongoError as error:
            log.warning("sort_bounds_not_updated", tenant=tenant, error=str(error))

    async def upsert_track(self, tenant: str, track_id: str, fields: Document) -> None:
        """Set `fields` on the track, creating it if needed (tenant and track_id are the key)."""
        key = track_key(tenant, track_id)
        if {"filename", "tags", "audio"} & fields.keys():  # the words change with these
            stored = await self.tracks.find_one(key, projection=SEARCH_SOURCES) or {}
            fields = fields | search_fields(stored | fields)
        await self.tracks.update_one(key, {"$set": fields | key}, upsert=True)
        await self.note_written(tenant, [fields])

    async def create_track(self, tenant: str, track_id: str, fields: Document) -> str | None:
        """Record a new upload; None, or the id of the tenant's track with the same bytes.

        The document `_id` is `tenant:sha256`, so the same bytes uploaded twice by one tenant
        (even concurrently) map to one track: the second insert fails on the unique `_id`.
        """
        document = upload_document(tenant, track_id, fields)
        try:
            await self.tracks.insert_one(document)
        except DuplicateKeyError:
            existing = await self.tracks.find_one({"_id": document["_id"]}, {"track_id": True})
            if existing is None:  # deleted meanwhile: try once more
                return await self.create_track(tenant, track_id, fields)
            return str(existing["track_id"])
        await self.note_written(tenant, [document], added=1)
        return None

    async def find_upload(self, tenant: str, sha256: str) -> Document | None:
        """The tenant's track with these bytes, if any (see create_track)."""
        return await self.tracks.find_one({"_id": f"{tenant}:{sha256}"}, {"_id": False})

    async def list_tracks(
        self,
        tenant: str,
        filters: SearchFilters,
        *,
        words: list[str],
        status: str | None,
        cursor: str | None,
        limit: int,
        sha256: str | None = None,
        sort: str = DEFAULT_SORT,
        fields: Sequence[str] = (),
    ) -> tuple[list[Document], str | None]:
        """A page of the tenant's tracks in `sort` order (stores.catalog_order; default newest
        first) and the cursor of the next page. Raises InvalidSortError, InvalidCursorError.
        `fields`: what the page shows (dotted paths; the order's own are added), or all: the
        embedded server takes about three times as long to send whole documents."""
        order = parse_sort(sort)
        projection = page_projection(order, fields)
        query = track_query(tenant, filters, words=words, status=status, sha256=sha256)
        last = decode_cursor(order, cursor) if cursor else None
        page: list[Document] = []
        wanted = limit + 1  # one more than a page: is there a next one?
        if last is None or last.values is not None:
            if last is not None:
                ties = ties_after(order, last)
                page += await self._read(query, ties, order, wanted, projection=projection)
            after = None if last is None or last.values is None else last.values[0]
            hint = f"{order.name}:{order.descending}:{query}" if last is None else None
            page += await self._sliced(
                tenant,
                query,
                order,
                projection,
                after=after,
                limit=wanted - len(page),
                hint=hint,
            )
        if len(page) < wanted and not order.column.always_present:
            missing = without_value(order, last)
            by_id = [("track_id", order.direction)]
            rest = wanted - len(page)
            page += await self._read(query, missing, order, rest, projection=projection, sort=by_id)
        if len(page) <= limit:
            return page, None
        return page[:limit], encode_cursor(order, page[limit - 1])

    async def _read(
        self,
        query: Document,
        condition: Document,
        order: TrackOrder,
        limit: int,
        *,
        projection: Document,
        sort: list[tuple[str, int]] | None = None,
    ) -> list[Document]:
        """Up to `limit` tracks of `query` meeting `condition` (first: the field an index
        leads on, see catalog_queries.index_shaped), sorted by `sort` or the order's fields.
        A slice of one key's tracks reads the index behind the tenant and the key alone first
        (catalog_queries.keyed_split), then checks the other conditions."""
        if limit <= 0:
            return []
        shaped = index_shaped({"$and": [condition, *query["$and"]]})
        spec = sort or sort_spec(order)
        split = keyed_split(shaped, order.column.fields[0])
        if split is None:
            found = self.tracks.find(shaped, projection=projection)
            return await found.sort(spec).to_list(limit)
        lead, rest = split
        pipeline: list[Document] = [
            {"$match": lead},
            {"$match": rest},
            {"$sort": dict(spec)},
            {"$limit": limit},
            {"$project": projection},
        ]
        return await (await self.tracks.aggregate(pipeline)).to_list(None)

    async def _sliced(
        self,
        tenant: str,
        query: Document,
        order: TrackOrder,
        projection: Document,
        *,
        after: Any | None,
        limit: int,
        hint: str | None = None,
    ) -> list[Document]:
        """Up to `limit` tracks with a value for the column, in order, after the value `after`
        (None: from the start), read in slices (stores.catalog_slices); `hint` names a first
        page, where it ended is remembered. The tenant's bounds place the slices where its
        values lie: a first page not seen before starts at their end, sized for a page."""
        column, axis = order.column, order.column.axis
        span = filter_span(query, column.fields[0])  # a filter on the column: slice only it
        axis = axis.spanning(*span)
        until = self._first_ends.get(hint) if hint else None
        first_unseen = hint is not None and until is None
        if axis.text or first_unseen:  # what the bounds change: text's places, where to start
            known = first_bounds(order, await self.bounds.find_one({"_id": tenant}))
            if known is not None and not axis.text:
                known = narrowed(known, *span)
            if known is not None:
                axis = axis.within(known[0], known[1])
                if first_unseen:
                    until = first_end(axis, known, limit, descending=order.descending)
        walk = SliceWalk(
            column.fields[0], axis, descending=order.descending, after=after, until=until
        )
        page: list[Document] = []
        while len(page) < limit:
            condition, missing = walk.condition(), limit - len(page)
            page += await self._read(query, condition, order, missing, projection=projection)
            if walk.last:
                break
            spread = (order.lead(page[0]), order.lead(page[-1])) if page else None
            walk.advance(len(page), limit - len(page), spread)
        if hint is not None and len(page) >= limit:
            self._first_ends.pop(hint, None)  # the newest last, the oldest forgotten first
            self._first_ends[hint] = walk.reach(order.lead(page[limit - 1]))
            if len(self._first_ends) > FIRST_ENDS_KEPT:
                del self._first_ends[next(iter(self._first_ends))]
        return page

    async def keyword_search(
        self, tenant: str, words: list[str], filters: SearchFilters, limit: int
    ) -> list[tuple[Document, float]]:
        """Tracks matching a query's words (in query order) as stores.text_search ranks them —
        music words by tag concept scores, other words by metadata — best first, then newest;
        the documents hold `track_id` and `created_at`. Each round reads the candidates of one
        score bucket from the `keywords` index; the server scores, sorts and cuts them."""
        terms = text_search.parse(words)
        found: list[tuple[Document, float]] = []
        for bucket in text_search.BUCKETS if terms else ():
            tokens = text_search.candidate_tokens(terms, bucket)
            found = await self._scored(
                {"tenant": tenant, "keywords": {"$in": tokens}},
                track_query(tenant, filters),
                text_search.score_expression(terms),
                limit,
            )
            if len(found) >= limit and found[-1][1] >= bucket:
                break  # no track without a term this strong can score as high as these
        return found

    async def _scored(
        self, candidates: Document, query: Document, score: Document, limit: int
    ) -> list[tuple[Document, float]]:
        """The `limit` best `candidates` passing `query` by `score`. The candidates are matched
        alone first: SecantusDB plans an index scan only for a filter that names exactly the
        index's fields (anything more scans the whole collection), and MongoDB merges the two
        stages anyway."""
        pipeline: list[Document] = [
            {"$match": candidates},
            {"$match": query},
            {
                "$project": {
                    "_id": False,
                    "track_id": True,
                    "created_at": True,
                    "score": score,
                }
            },
            {"$sort": {"score": DESCENDING, "created_at": DESCENDING, "track_id": DESCENDING}},
            {"$limit": limit},
        ]
        found = await self.tracks.aggregate(pipeline)
        return [
            ({"track_id": doc["track_id"], "created_at": doc["created_at"]}, float(doc["score"]))
            async for doc in found
        ]

    async def get_tracks(self, tenant: str, track_ids: list[str]) -> dict[str, Document]:
        # by key alone, the upload checked here: beside `$exists` the embedded server would
        # read every document of the tenant (see catalog_queries.index_shaped)
        documents = await self.tracks.find(
            {"tenant": tenant, "track_id": {"$in": track_ids}}, projection={"_id": False}
        ).to_list(None)
        return {doc["track_id"]: doc for doc in documents if _uploaded(doc)}

    async def _count_by(self, field: str, match: Document) -> dict[str, int]:
        groups = await self.tracks.aggregate(
            [{"$match": match}, {"$group": {"_id": f"${field}", "count": {"$sum": 1}}}]
        )
        return {str(group["_id"]): int(group["count"]) async for group in groups}

    async def count_by_status(self) -> dict[str, int]:
        """Tracks of every tenant by status (the projection's latest finished stage or failed)."""
        return await self._count_by("status", {"status": {"$exists": True}})

    async def count_failed_by_stage(self) -> dict[str, int]:
        return await self._count_by("failed_stage", {"status": FAILED_STATUS})

    async def get_track(self, tenant: str, track_id: str) -> Document | None:
        return await self.tracks.find_one(track_key(tenant, track_id), projection={"_id": False})

    async def get_uploaded_track(self, tenant: str, track_id: str) -> Document | None:
        """The track as the API knows it: only once its upload was recorded."""
        document = await self.get_track(tenant, track_id)  # by key alone, as get_tracks
        return document if document is not None and _uploaded(document) else None

    async def count_tracks(self, tenant: str | None = None, **equals: Any) -> int:
        query = equals if tenant is None else equals | {"tenant": tenant}
        return await self.tracks.count_documents(query)

    async def mark_deleted(self, tenant: str, track_id: str) -> None:
        """Record the deletion first, so nothing replayed or in flight re-creates the track."""
        await self.deleted.update_one(
            {"_id": f"{tenant}:{track_id}"}, {"$set": {"at": time.time()}}, upsert=True
        )

    async def is_deleted(self, tenant: str, track_id: str) -> bool:
        return await self.deleted.find_one({"_id": f"{tenant}:{track_id}"}) is not None

    async def delete_track(self, tenant: str, track_id: str) -> bool:
        result = await self.tracks.delete_one(track_key(tenant, track_id))
        if result.deleted_count != 1:
            return False
        await self.note_written(tenant, [], added=-1)
        return True

    # -- duplicates (handlers.fingerprint): both sides of a pair name each other ---------------
    async def set_duplicates(self, tenant: str, track_id: str, others: list[str]) -> None:
        """`track_id` holds the same recording as `others` (and no other track): its
        `duplicates` become `others`, each of them names it, and tracks no longer found forget
        it. Idempotent (a replay rewrites the same lists)."""
        await self.tracks.update_one(
            track_key(tenant, track_id), {"$set": {"duplicates": sorted(others)}}
        )
        await self.tracks.update_many(
            {"tenant": tenant, "duplicates": track_id, "track_id": {"$nin": others}},
            {"$pull": {"duplicates": track_id}},
        )
        if others:
            await self.tracks.update_many(
                {"tenant": tenant, "track_id": {"$in": others}},
                {"$addToSet": {"duplicates": track_id}},
            )

    async def forget_duplicate(self, tenant: str, track_id: str) -> None:
        """A deleted track is nobody's duplicate any more."""
        await self.tracks.update_many(
            {"tenant": tenant, "duplicates": track_id}, {"$pull": {"duplicates": track_id}}
        )

    async def with_duplicates(self, tenant: str, limit: int) -> list[Document]:
        """The tenant's tracks that have duplicates (oldest first, at most `limit`)."""
        found = self.tracks.find(
            {"tenant": tenant, "duplicates.0": {"$exists": True}} | UPLOADED,
            projection={"_id": False},
        )
        return await found.sort([("created_at", ASCENDING), ("track_id", ASCENDING)]).to_list(limit)

    async def apply_progress(self, progress: Progress, seq: int) -> None:
        """Project one progress event (PROGRESS stream sequence `seq`) onto its track; stale
        events (an earlier sequence than the one recorded) change nothing.

        When the filter does not match an existing track, the upsert tries to insert a second
        (tenant, track_id) document and the unique index rejects it. Then the track exists (it
        was there, or a concurrent first event created it), so a plain update decides: no match
        means this event is stale.
        """
        if await self.is_deleted(progress.tenant, progress.track_id):
            return
        query, update = stage_update(progress, seq)
        try:
            await self.tracks.update_one(query, update, upsert=True)
        except DuplicateKeyError:
            if (await self.tracks.update_one(query, update)).matched_count == 0:
                return
        status = status_update(progress, seq)
        if status is not None:
            await self.tracks.update_one(*status)

    # -- repair (handlers.repair): tracks whose status never reached an end --------------------
    async def unfinished_tracks(self, quiet_since: float, limit: int) -> list[Document]:
        """Uploaded tracks, not indexed or failed, with no status change or repair since
        `quiet_since` (epoch seconds), oldest first."""
        query: Document = {
            "status": {"$in": UNFINISHED_STATUSES},  # first: the (status, created_at) index
            "created_at": {"$lte": quiet_since},
            "status_at": {"$not": {"$gt": quiet_since}},
            "repaired_at": {"$not": {"$gt": quiet_since}},
        }
        found = self.tracks.find(query, projection={"_id": False}).sort("created_at", ASCENDING)
        return await found.to_list(limit)

    async def settle_status(
        self, tenant: str, track_id: str, *, failed: tuple[str, str] | None = None
    ) -> None:
        """Set the final status the log records: indexed, or failed with (stage, reason)."""
        key = track_key(tenant, track_id)
        if failed is None:
            update: Document = {
                "$set": {"status": INDEXED_STATUS, "repaired_at": time.time()},
                "$unset": {"failure_reason": "", "failed_stage": ""},
            }
        else:
            stage, reason = failed
            update = {
                "$set": {
                    "status": FAILED_STATUS,
                    "failed_stage": stage,
                    "failure_reason": reason,
                    "repaired_at": time.time(),
                }
            }
            key |= {"status": {"$ne": INDEXED_STATUS}}
        await self.tracks.update_one(key, update)

    async def mark_repaired(self, tenant: str, track_id: str) -> None:
        """Remember that the track was re-driven now (the next sweep waits a grace period)."""
        await self.tracks.update_one(
            track_key(tenant, track_id), {"$set": {"repaired_at": time.time()}}
        )
