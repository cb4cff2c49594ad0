"""What the stage, the delete consumer and the identify answers need of the fingerprint index,
and where it comes from: Qdrant Edge in its owning process (stores.fingerprints_edge) by
default; a Qdrant server or cluster (stores.fingerprints_server) when `qdrant_url` is set."""

from __future__ import annotations

from typing import Protocol

from handlers.fingerprint import core
from schemas.settings import Settings
from stores.fingerprints import Identified


class FingerprintStore(Protocol):
    async def add(self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times) -> int:
        """Replace the track's fingerprints; the number of windows written."""

    async def remove(self, tenant: str, track_id: str) -> None: ...

    async def identify(
        self, tenant: str, hashes: core.Hashes, times: core.Times, limit: int = 5
    ) -> list[Identified]:
        """The tenant's tracks containing the clip, best first; [] for no match."""

    async def duplicates(
        self, tenant: str, track_id: str, hashes: core.Hashes, times: core.Times
    ) -> list[str]:
        """The tenant's other tracks holding the same recording as this one."""

    async def count(self, tenant: str, track_id: str | None = None) -> int:
        """Windows stored for the tenant (or one of its tracks)."""

    async def close(self) -> None: ...


def open_fingerprints(settings: Settings) -> FingerprintStore:
    """A Qdrant server when `qdrant_url` is set (as for vectors), else Edge under the data dir."""
    if settings.qdrant_url:
        from stores.fingerprints_server import ServerFingerprints  # noqa: PLC0415 - one loads

        return ServerFingerprints.connect(
            settings.qdrant_url, settings.qdrant_api_key, settings.qdrant_collection
        )
    from stores.fingerprints_edge import EdgeFingerprints  # noqa: PLC0415 - one backend loads

    return EdgeFingerprints.start(settings.data_path)
