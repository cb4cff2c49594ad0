"""Authentication end to end against the real Mongo-protocol server: accounts, API keys,
rotating refresh tokens, and the middleware and controller in a small Litestar app.

Most tests use an app with only the auth pieces (plus a few probe routes), so they need no NATS
or Qdrant; requests go through httpx's in-process ASGI transport, on the test's own event loop.
The last ones check the same rules through the real gateway with all its middleware.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import jwt
import msgspec
import pytest
from litestar import Litestar, Request, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from gateway.auth import Credential
from gateway.auth.guards import admin_only
from gateway.auth.middleware import auth_middleware
from gateway.controllers.auth import AuthController
from gateway.services import Services
from schemas.api import User
from schemas.settings import Settings, settings_from_env
from stores.accounts import (
    Accounts,
    InvalidRefreshToken,
    RefreshTokenReused,
    UsernameTaken,
)
from stores.catalog import Catalog
from tests.gateway.conftest import Gateway

PASSWORD = "correct horse battery"
REUSED = "refresh token reused; all sessions of this login were revoked"


# -- a small app with the auth pieces ----------------------------------------------------------
@get("/v1/credential", operation_id="probeCredential")
async def credential(request: Request[User, Credential, State]) -> Credential:
    return request.auth


@get("/v1/admin/probe", operation_id="probeAdmin", guards=[admin_only])
async def admin_probe() -> str:
    return "admin"


@get("/health", operation_id="probeHealth")
async def health() -> str:
    return "ok"


@websocket("/v1/socket")
async def socket(socket: WebSocket[User, Credential, State]) -> None:
    await socket.accept()
    await socket.send_text(socket.user.username)
    await socket.close()


def in_process(app: Litestar) -> httpx.AsyncClient:
    """A client calling `app` on this event loop (Litestar's own test client uses a thread)."""
    transport = httpx.ASGITransport(app=cast(Any, app))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def auth_app(accounts: Accounts, settings: Settings) -> Litestar:
    unused: Any = None  # auth never touches NATS, vectors or blobs
    services = Services(
        settings=settings,
        nc=unused,
        js=unused,
        publisher=unused,
        catalog=unused,
        accounts=accounts,
        vectors=unused,
        blobs=unused,
        searches=unused,
    )
    return Litestar(
        route_handlers=[AuthController, credential, admin_probe, health, socket],
        dependencies={"services": Provide(_services, sync_to_thread=False)},
        middleware=[auth_middleware],
        state=State({"services": services}),
    )


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from_env({}, data_dir=str(tmp_path))


@pytest.fixture
async def catalog(mongo_server: str, unique_name: Callable[[str], str]) -> AsyncIterator[Catalog]:
    catalog = await Catalog.open(mongo_server, unique_name("auth"))
    try:
        yield catalog
    finally:
        await catalog.close()


@pytest.fixture
async def accounts(catalog: Catalog, settings: Settings) -> Accounts:
    accounts = Accounts(catalog.db, settings)
    await accounts.ensure_indexes()
    return accounts


@pytest.fixture
async def client(accounts: Accounts, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(auth_app(accounts, settings)) as client:
        yield client


async def login(client: httpx.AsyncClient, username: str, *, register: bool = True) -> Any:
    credentials = {"username": username, "password": PASSWORD}
    if register:
        assert (await client.post("/v1/auth/register", json=credentials)).status_code == 201
    response = await client.post("/v1/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the store ---------------------------------------------------------------------------------
async def test_users(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    assert len(ada.user_id) == 32
    assert set(ada.user_id) <= set("0123456789abcdef")  # it is a NATS subject token
    assert ada.role == "user"
    with pytest.raises(UsernameTaken):
        await accounts.create_user("ada", "another password")

    assert await accounts.authenticate("ada", PASSWORD) == ada
    assert await accounts.authenticate("ada", PASSWORD + "!") is None
    assert await accounts.authenticate("nobody", PASSWORD) is None
    assert await accounts.get_user(ada.user_id) == ada
    assert await accounts.get_user("0" * 32) is None
    stored = await accounts.users.find_one({"_id": ada.user_id})
    assert stored is not None
    assert PASSWORD not in str(stored)
    assert stored["password_hash"].startswith("$argon2id$")


async def test_api_keys(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    bob = await accounts.create_user("bob", PASSWORD)
    created = await accounts.create_api_key(ada.user_id, "backup script")
    assert created.api_key.startswith(f"tsk_{created.key_id}_")
    stored = await accounts.api_keys.find_one({"_id": created.key_id})
    assert stored is not None
    assert created.api_key.rpartition("_")[2] not in str(stored)

    assert await accounts.user_for_api_key(created.api_key) == (ada, created.key_id)
    [info] = await accounts.list_api_keys(ada.user_id)
    assert (info.key_id, info.name) == (created.key_id, "backup script")
    assert info.last_used_at is not None
    assert await accounts.list_api_keys(bob.user_id) == []

    for wrong in (created.api_key[:-1] + "x", "tsk_nokey", f"tsk_{'0' * 16}_secret", "key"):
        assert await accounts.user_for_api_key(wrong) is None
    assert not await accounts.revoke_api_key(bob.user_id, created.key_id)
    assert await accounts.revoke_api_key(ada.user_id, created.key_id)
    assert await accounts.user_for_api_key(created.api_key) is None


async def test_refresh_rotation_and_reuse(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    first = await accounts.issue_refresh_token(ada.user_id)
    other_login = await accounts.issue_refresh_token(ada.user_id)

    user, second = await accounts.rotate_refresh_token(first)
    assert user == ada
    _, third = await accounts.rotate_refresh_token(second)

    with pytest.raises(RefreshTokenReused):  # `first` leaked: its whole family goes
        await accounts.rotate_refresh_token(first)
    with pytest.raises(RefreshTokenReused):
        await accounts.rotate_refresh_token(third)
    assert (await accounts.rotate_refresh_token(other_login))[0] == ada


async def test_concurrent_rotation_spends_a_token_once(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    token = await accounts.issue_refresh_token(ada.user_id)
    results = await asyncio.gather(
        accounts.rotate_refresh_token(token),
        accounts.rotate_refresh_token(token),
        return_exceptions=True,
    )
    winners = [result for result in results if isinstance(result, tuple)]
    assert len(winners) == 1
    assert any(isinstance(result, RefreshTokenReused) for result in results)
    with pytest.raises(RefreshTokenReused):  # the loser revoked the family, winner's token too
        await accounts.rotate_refresh_token(winners[0][1])


async def test_refresh_token_refusals(catalog: Catalog, accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    token = await accounts.issue_refresh_token(ada.user_id)
    token_id = token.removeprefix("rt_").partition(".")[0]
    for malformed in ("", "rt_", "rt_abc", "xx_abc.def", token.replace(".", "_")):
        with pytest.raises(InvalidRefreshToken, match="malformed"):
            await accounts.rotate_refresh_token(malformed)
    for unknown in (token + "x", f"rt_{'0' * 32}.secret"):
        with pytest.raises(InvalidRefreshToken, match="unknown"):
            await accounts.rotate_refresh_token(unknown)
    assert (await accounts.refresh_tokens.find_one({"_id": token_id}) or {})["used"] is False

    expiring = Accounts(catalog.db, settings_from_env({}, refresh_token_ttl_s=-1.0))
    with pytest.raises(InvalidRefreshToken, match="expired"):
        await expiring.rotate_refresh_token(await expiring.issue_refresh_token(ada.user_id))


async def test_logout_revokes_the_family(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada", PASSWORD)
    _, current = await accounts.rotate_refresh_token(
        await accounts.issue_refresh_token(ada.user_id)
    )
    other_login = await accounts.issue_refresh_token(ada.user_id)
    await accounts.revoke_family_of(current)
    with pytest.raises(RefreshTokenReused):
        await accounts.rotate_refresh_token(current)
    assert (await accounts.rotate_refresh_token(other_login))[0] == ada


# -- the HTTP API ------------------------------------------------------------------------------
async def test_register(client: httpx.AsyncClient, accounts: Accounts, settings: Settings) -> None:
    credentials = {"username": "ada", "password": PASSWORD}
    response = await client.post("/v1/auth/register", json=credentials)
    assert response.status_code == 201
    body = response.json()
    assert body == {"user_id": body["user_id"], "username": "ada", "role": "user"}
    assert (await client.post("/v1/auth/register", json=credentials)).status_code == 409
    for username in ("Ada", "ab", "-ada", "a" * 65, "ada lovelace", "ädä"):
        bad = await client.post("/v1/auth/register", json=credentials | {"username": username})
        assert bad.status_code == 400, username
        assert "username must be" in bad.json()["detail"]
    short = await client.post("/v1/auth/register", json={"username": "bob", "password": "1234567"})
    assert short.status_code == 400
    assert "password must be" in short.json()["detail"]

    closed = auth_app(accounts, msgspec.structs.replace(settings, allow_registration=False))
    async with in_process(closed) as closed_client:
        refused = await closed_client.post(
            "/v1/auth/register", json=credentials | {"username": "eve"}
        )
    assert refused.status_code == 403


async def test_login_and_me(client: httpx.AsyncClient, settings: Settings) -> None:
    pair = await login(client, "ada")
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == int(settings.access_token_ttl_s)
    me = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "ada"
    for username, password in (("ada", "wrong password"), ("nobody", PASSWORD)):
        refused = await client.post(
            "/v1/auth/login", json={"username": username, "password": password}
        )
        assert refused.status_code == 401
        assert refused.json()["detail"] == "invalid username or password"


async def test_everything_else_requires_auth(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200
    for headers in ({}, {"Authorization": "Basic YWRhOnB3"}, {"Authorization": "Bearer "}):
        response = await client.get("/v1/auth/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/v1/auth/api-keys")).status_code == 401
    assert (await client.post("/v1/auth/logout", json={"refresh_token": "x"})).status_code == 401


def _forged(key: bytes | str, algorithm: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "0" * 32,
        "username": "ada",
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "typ": "access",
    } | changes
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda secret: _forged("", "none"), "algorithm not allowed"),
        (lambda secret: _forged(b"not the gateway's key" * 4, "HS256"), "signature"),
        (
            lambda secret: _forged(
                secret, "HS256", iat=int(time.time()) - 60, exp=int(time.time()) - 1
            ),
            "expired",
        ),
        (lambda secret: _forged(secret, "HS256", exp=None), "no 'exp' claim"),
    ],
    ids=["alg-none", "wrong-key", "expired", "missing-exp"],
)
async def test_bad_access_tokens_get_401(
    client: httpx.AsyncClient, settings: Settings, forge: Callable[[bytes], str], reason: str
) -> None:
    await login(client, "ada")  # the gateway has made its key by now
    secret = (settings.data_path / "secrets" / "jwt.key").read_bytes().strip()
    response = await client.get("/v1/auth/me", headers=bearer(forge(secret)))
    assert response.status_code == 401
    assert reason in response.json()["detail"]


async def test_refresh_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await login(client, "ada")
    other_login = await login(client, "ada", register=False)

    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/auth/me", headers=bearer(second["access_token"]))).is_success

    reused = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["detail"] == REUSED
    after = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    untouched = {"refresh_token": other_login["refresh_token"]}
    assert (await client.post("/v1/auth/refresh", json=untouched)).status_code == 200

    garbage = await client.post("/v1/auth/refresh", json={"refresh_token": "rt_nope"})
    assert garbage.status_code == 401
    assert garbage.json()["detail"] == "malformed refresh token"


async def test_logout(client: httpx.AsyncClient) -> None:
    pair = await login(client, "ada")
    body = {"refresh_token": pair["refresh_token"]}
    response = await client.post("/v1/auth/logout", json=body, headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    assert (await client.post("/v1/auth/refresh", json=body)).status_code == 401


async def test_api_keys_and_credentials(client: httpx.AsyncClient) -> None:
    ada = await login(client, "ada")
    bob = await login(client, "bob")
    me = (await client.get("/v1/auth/me", headers=bearer(ada["access_token"]))).json()

    created = await client.post(
        "/v1/auth/api-keys", json={"name": "sync"}, headers=bearer(ada["access_token"])
    )
    assert created.status_code == 201
    key = created.json()
    assert (
        await client.post(
            "/v1/auth/api-keys", json={"name": " "}, headers=bearer(ada["access_token"])
        )
    ).status_code == 400

    by_jwt = await client.get("/v1/credential", headers=bearer(ada["access_token"]))
    assert by_jwt.json() == {"kind": "jwt", "subject": me["user_id"]}
    for headers in (bearer(key["api_key"]), {"X-API-Key": key["api_key"]}):
        by_key = await client.get("/v1/credential", headers=headers)
        assert by_key.json() == {"kind": "api_key", "subject": key["key_id"]}
    assert (await client.get("/v1/auth/me", headers=bearer(key["api_key"]))).json() == me

    listed = (await client.get("/v1/auth/api-keys", headers=bearer(ada["access_token"]))).json()
    assert [item["key_id"] for item in listed] == [key["key_id"]]
    assert "api_key" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    path = f"/v1/auth/api-keys/{key['key_id']}"
    assert (await client.delete(path, headers=bearer(bob["access_token"]))).status_code == 404
    assert (await client.delete(path, headers=bearer(ada["access_token"]))).status_code == 204
    revoked = await client.get("/v1/auth/me", headers=bearer(key["api_key"]))
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "unknown or revoked API key"


async def test_admin_only(client: httpx.AsyncClient, accounts: Accounts) -> None:
    user = await login(client, "ada")
    refused = await client.get("/v1/admin/probe", headers=bearer(user["access_token"]))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "admin role required"

    await accounts.create_user("root", PASSWORD, role="admin")
    admin = await login(client, "root", register=False)
    assert (
        await client.get("/v1/admin/probe", headers=bearer(admin["access_token"]))
    ).text == "admin"


async def test_websocket_access_token_query_parameter(
    client: httpx.AsyncClient, accounts: Accounts, settings: Settings
) -> None:
    pair = await login(client, "ada")
    # Litestar's test client runs the app on its own thread and loop; a JWT needs no database.
    with TestClient(auth_app(accounts, settings)) as sync_client:
        with sync_client.websocket_connect(f"/v1/socket?access_token={pair['access_token']}") as ws:
            assert ws.receive_text() == "ada"
        with pytest.raises(WebSocketDisconnect), sync_client.websocket_connect("/v1/socket") as ws:
            ws.receive_text()


# -- the real gateway (every middleware, every controller) --------------------------------------
async def test_gateway_requires_auth_everywhere_but_health_and_docs(gateway: Gateway) -> None:
    client = gateway.client
    assert (await client.get("/health")).status_code == 200
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "refresh" in {
        operation["operationId"]
        for path in schema.json()["paths"].values()
        for operation in path.values()
    }
    for path in ("/v1/tracks", "/v1/auth/me", "/v1/admin/status"):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.json()["detail"].startswith("authentication required")

    _, headers = await gateway.new_user()
    secret = (gateway.settings.data_path / "secrets" / "jwt.key").read_bytes().strip()
    assert (await client.get("/v1/tracks", headers=headers)).status_code == 200
    forged = {
        "alg none": _forged("", "none"),
        "wrong key": _forged(b"not the gateway's key" * 4, "HS256"),
        "expired": _forged(secret, "HS256", iat=int(time.time()) - 60, exp=int(time.time()) - 1),
        "missing exp": _forged(secret, "HS256", exp=None),
    }
    for name, token in forged.items():
        response = await client.get("/v1/tracks", headers=bearer(token))
        assert response.status_code == 401, name


async def test_gateway_refresh_reuse_and_api_keys(gateway: Gateway) -> None:
    client = gateway.client
    user, headers = await gateway.new_user()
    created = await client.post("/v1/auth/api-keys", json={"name": "cli"}, headers=headers)
    api_key = created.json()["api_key"]
    assert (await client.get("/v1/tracks", headers={"X-API-Key": api_key})).status_code == 200
    assert (await client.get("/v1/admin/status", headers=bearer(api_key))).status_code == 403
    assert (await client.get("/v1/admin/status", headers=await gateway.new_admin())).is_success

    pair = await gateway.login(user.username, PASSWORD)
    body = {"refresh_token": pair.refresh_token}
    assert (await client.post("/v1/auth/refresh", json=body)).status_code == 200
    reused = await client.post("/v1/auth/refresh", json=body)
    assert reused.status_code == 401
    assert reused.json()["detail"] == REUSED
