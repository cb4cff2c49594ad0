"""Operating the gateway: health and readiness, Prometheus metrics, request ids, rate limits
that headers cannot bypass, CORS, admin-only replay and status."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import msgspec

from schemas.api import ReplayResult, SystemStatus
from streams.names import CHAIN_STAGES, Stage
from tests.gateway.conftest import Gateway, gateway_settings, running
from tests.gateway.test_tracks import upload, wait_indexed
from tests.synth import write_track


async def test_health_and_readiness_need_no_auth(gateway: Gateway) -> None:
    health = await gateway.client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await gateway.client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "ready": True,
        "checks": {"nats": "ok", "catalog": "ok", "vectors": "ok", "blobs": "ok"},
    }
    assert (await gateway.client.get("/v1/tracks")).status_code == 401
    assert (await gateway.client.get("/schema/openapi.json")).status_code == 200


async def test_request_ids_are_returned_and_kept(gateway: Gateway) -> None:
    fresh = await gateway.client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    kept = await gateway.client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"
    hostile = await gateway.client.get("/health", headers={"X-Request-ID": "a b\tc"})
    assert hostile.headers["x-request-id"] != "a b\tc"


async def test_metrics_show_requests_uploads_stages_and_lag(
    gateway: Gateway, tmp_path: Path
) -> None:
    _, headers = await gateway.new_user()
    path = await asyncio.to_thread(
        write_track, tmp_path / "m.wav", bpm=110, key="E", mode="minor", seconds=8
    )
    accepted = await upload(gateway, headers, path)
    await wait_indexed(gateway, headers, accepted.track_id)
    text = (await gateway.client.get("/metrics")).text
    assert 'tonestream_http_request_duration_seconds_count{method="POST",route="/v1/tracks"' in text
    assert re.search(r'tonestream_uploads_total\{outcome="accepted"\} [1-9]', text)
    for stage in Stage:
        assert f'tonestream_consumer_pending_messages{{stage="{stage}"}}' in text
    for stage in CHAIN_STAGES:  # the fingerprint stage may still be running
        assert re.search(
            rf'tonestream_stage_duration_seconds_count\{{stage="{stage}"\}} [1-9]', text
        )


async def test_rate_limit_is_per_caller_and_ignores_forwarded_for(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "var", rate_limit_per_minute=60.0, rate_limit_burst=3)
    async with running(settings) as limited:
        user, alice = await limited.new_user("alice")
        statuses = []
        for i in range(5):
            spoofed = alice | {"X-Forwarded-For": f"10.0.0.{i}"}
            response = await limited.client.get("/v1/tracks", headers=spoofed)
            statuses.append(response.status_code)
        assert statuses[-1] == 429, statuses
        refused = await limited.client.get("/v1/tracks", headers=alice)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert "rate limit" in refused.json()["detail"]
        # another caller has its own budget
        key = await limited.accounts.create_api_key(user.user_id, "script")
        as_key = await limited.client.get("/v1/tracks", headers={"X-API-Key": key.api_key})
        assert as_key.status_code == 200


async def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "var", cors_origins=("https://app.example",))
    async with running(settings) as with_cors:
        allowed = await with_cors.client.options(
            "/v1/tracks",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
        other = await with_cors.client.options(
            "/v1/tracks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_admin_routes_need_the_admin_role(gateway: Gateway, tmp_path: Path) -> None:
    _, user = await gateway.new_user()
    assert (await gateway.client.get("/v1/admin/status", headers=user)).status_code == 403
    replay_body = {"stage": "indexing"}
    refused = await gateway.client.post("/v1/admin/replay", json=replay_body, headers=user)
    assert refused.status_code == 403

    admin = await gateway.new_admin()
    status = await gateway.client.get("/v1/admin/status", headers=admin)
    assert status.status_code == 200, status.text
    body = msgspec.json.decode(status.content, type=SystemStatus)
    assert [s.stage for s in body.stages] == list(Stage)

    path = await asyncio.to_thread(
        write_track, tmp_path / "r.wav", bpm=100, key="C", mode="major", seconds=6
    )
    accepted = await upload(gateway, user, path)
    await wait_indexed(gateway, user, accepted.track_id)
    replay = await gateway.client.post("/v1/admin/replay", json=replay_body, headers=admin)
    assert replay.status_code == 200, replay.text
    result = msgspec.json.decode(replay.content, type=ReplayResult)
    assert result.stage == "indexing"
    assert result.from_sequence >= 1
    await gateway.replayed(Stage.INDEXING)
    unknown = await gateway.client.post("/v1/admin/replay", json={"stage": "x"}, headers=admin)
    assert unknown.status_code == 400
    assert "unknown stage" in unknown.json()["detail"]
