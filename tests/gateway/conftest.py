"""A running gateway for HTTP tests: the real embedded stack, composed the way `tonestream up`
composes it (nats-server child, SecantusDB child, Qdrant local, blob folder, every stage, the
gateway served by uvicorn on a free port), shared by the gateway tests of one session.

Each test makes its own users, so tests never see each other's tracks.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client

from cli.up import running_gateway, running_system
from handlers.worker import Worker
from schemas.api import TokenPair, User
from schemas.settings import Settings, settings_from_env
from stores.accounts import Accounts
from streams.names import AUDIO_STREAM, Stage, consumer_name
from streams.server import free_port
from tests.integration.kit import wait_until

Headers = dict[str, str]


@dataclass
class Gateway:
    url: str
    client: httpx.AsyncClient
    worker: Worker
    nc: Client  # a separate connection for watching the log
    settings: Settings

    @property
    def accounts(self) -> Accounts:
        assert self.worker.catalog is not None
        return Accounts(self.worker.catalog.db, self.settings)

    async def login(self, username: str, password: str) -> TokenPair:
        response = await self.client.post(
            "/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return msgspec.json.decode(response.content, type=TokenPair)

    async def new_user(self, prefix: str = "user") -> tuple[User, Headers]:
        """A registered user and the headers of a fresh access token."""
        username, password = f"{prefix}-{uuid.uuid4().hex[:10]}", "correct horse battery"
        response = await self.client.post(
            "/v1/auth/register", json={"username": username, "password": password}
        )
        assert response.status_code == 201, response.text
        user = msgspec.json.decode(response.content, type=User)
        tokens = await self.login(username, password)
        return user, {"Authorization": f"Bearer {tokens.access_token}"}

    async def replayed(self, stage: Stage) -> None:
        """Wait until a replay of `stage` has gone through (the session's later tests would
        otherwise queue behind every earlier test's tracks)."""

        async def drained() -> bool:
            info = await self.nc.jetstream().consumer_info(AUDIO_STREAM, consumer_name(stage))
            return (info.num_pending or 0) + (info.num_ack_pending or 0) == 0

        await wait_until(drained, what=f"the {stage} replay to finish")

    async def new_admin(self) -> Headers:
        username, password = f"admin-{uuid.uuid4().hex[:10]}", "correct horse battery"
        await self.accounts.create_user(username, password, role="admin")
        tokens = await self.login(username, password)
        return {"Authorization": f"Bearer {tokens.access_token}"}


def gateway_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": str(data_dir),
        "port": free_port(),
        "workers": 2,
        "clip_enabled": False,
        "backoff_s": (2.0, 2.0, 2.0),
        "max_deliver": 3,
        "rate_limit_per_minute": 60_000.0,
        "rate_limit_burst": 10_000,
        "sse_keepalive_s": 1.0,
        "query_timeout_s": 60.0,
    }
    return settings_from_env({}, **(values | overrides))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_system(settings) as worker, running_gateway(worker) as url:
        nc = await nats.connect(worker.nats_url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
                yield Gateway(url, client, worker, nc, worker.settings)
        finally:
            await nc.close()


@pytest.fixture(scope="session")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with running(gateway_settings(tmp_path_factory.mktemp("gateway"))) as started:
        yield started
