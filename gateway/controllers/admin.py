"""Operations for admins: replay a stage from the event log, and the pipeline's status."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, post
from litestar.handlers import get
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from nats.js.errors import NotFoundError

from gateway.auth import BEARER
from gateway.auth.guards import admin_only
from gateway.deps import ServicesDep
from gateway.errors import (
    AUTHENTICATED,
    ClientException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from schemas.api import ReplayRequest, ReplayResult, StageStatus, SystemStatus
from stores.catalog import FAILED_STATUS
from streams.names import AUDIO_STREAM, Stage, consumer_name
from streams.replay import ReplayError, rewind


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise ClientException(detail=f"since: not an ISO 8601 time: {since!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ADMIN_ERRORS = [*AUTHENTICATED, PermissionDeniedException]


class AdminController(Controller):
    path = "/v1/admin"
    tags = ["admin"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER
    guards = [admin_only]  # noqa: RUF012

    @post(
        "/replay",
        operation_id="replayStage",
        status_code=HTTP_200_OK,
        raises=[*ADMIN_ERRORS, ServiceUnavailableException],  # Litestar declares the 400
    )
    async def replay(self, services: ServicesDep, data: JSONBody[ReplayRequest]) -> ReplayResult:
        """Rewind a stage's consumer so it re-reads its input from `since` (or the start)."""
        try:
            stage = Stage(data.stage)
        except ValueError:
            names = ", ".join(Stage)
            raise ClientException(detail=f"unknown stage {data.stage!r}; one of {names}") from None
        try:
            first = await rewind(services.nc, stage, _parse_since(data.since))
            info = await services.js.consumer_info(AUDIO_STREAM, consumer_name(stage))
        except (ReplayError, NotFoundError) as exc:
            raise ServiceUnavailableException(detail=f"replay failed: {exc}") from None
        pending = (info.num_pending or 0) + (info.num_ack_pending or 0)  # incl. already pulled
        return ReplayResult(stage=stage, from_sequence=first, pending=pending)

    @get("/status", operation_id="systemStatus", raises=ADMIN_ERRORS)
    async def status(self, services: ServicesDep) -> SystemStatus:
        """Per stage: pending, in flight, redelivered, failed tracks and lag; tracks by status."""
        failed_by_stage = await services.catalog.count_failed_by_stage()
        stages = []
        for stage in Stage:
            try:
                info = await services.js.consumer_info(AUDIO_STREAM, consumer_name(stage))
            except NotFoundError:
                pending = in_flight = redelivered = 0
            else:
                pending = info.num_pending or 0
                in_flight = info.num_ack_pending or 0
                redelivered = info.num_redelivered or 0
            stages.append(
                StageStatus(
                    stage=stage,
                    pending=pending,
                    in_flight=in_flight,
                    redelivered=redelivered,
                    failed=failed_by_stage.get(stage, 0),
                    lag=pending + in_flight,
                )
            )
        by_status = await services.catalog.count_by_status()
        by_status.setdefault(FAILED_STATUS, 0)
        return SystemStatus(stages=stages, tracks_by_status=by_status)
