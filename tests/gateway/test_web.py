"""The web app's server side over HTTP: the page and its assets with their security headers,
the cookie session (HttpOnly refresh cookie, CSRF checks, rotation, sign-out) and the media
links an <audio> element uses, with per-user isolation. The browser itself is in tests/browser.
"""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.testing import TestClient

from gateway.auth.browser import REFRESH_COOKIE, SESSION_PATH
from gateway.controllers.web import WEB_DIR, load_assets, web_router
from gateway.ratelimit import RateLimiter, rate_limit_middleware
from schemas.api import MediaLinks, Session
from schemas.settings import settings_from_env
from tests.gateway.conftest import Gateway
from tests.gateway.test_tracks import upload
from tests.synth import write_track

CSRF = {"X-Requested-With": "tonestream"}
PASSWORD = "correct horse battery"


def _cookie(response: httpx.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


def _with_cookie(refresh_token: str) -> dict[str, str]:
    """A Cookie header sent once (the shared client keeps no session cookie)."""
    return {"Cookie": f"{REFRESH_COOKIE}={refresh_token}"}


async def _account(gateway: Gateway) -> str:
    username = f"web-{uuid.uuid4().hex[:10]}"
    response = await gateway.client.post(
        "/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return username


async def test_page_and_assets_carry_strict_headers(gateway: Gateway) -> None:
    page = await gateway.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text  # nothing inline
    assert " style=" not in page.text
    assets = re.findall(r'(?:src|href)="(/web/[^"]+)"', page.text)
    assert assets, page.text
    modules = [f"/web/js/{path.name}" for path in (WEB_DIR / "js").glob("*.js")]
    for path in {*assets, *modules}:
        response = await gateway.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["content-security-policy"] == csp, path
    assert (await gateway.client.get("/web/nothing.js")).status_code == 404


async def test_the_sign_in_modules_are_preloaded_and_everything_is_revalidated(
    gateway: Gateway,
) -> None:
    """The page preloads the entry's whole static import graph (one round trip) and names the
    other modules (the signed-in app), which the entry imports side by side later; a reload
    costs a 304 per file."""
    page = await gateway.client.get("/")
    preloaded = re.findall(r'<link rel="modulepreload" href="/web/(js/[^"]+)">', page.text)
    assert "js/main.js" in preloaded
    for name in preloaded:
        source = (WEB_DIR / name).read_text()
        imported = re.findall(r"^import .* from '\./([a-z]+\.js)';$", source, re.MULTILINE)
        assert {f"js/{module}" for module in imported} <= set(preloaded), name
    listed = re.search(r'<meta name="later-modules" content="([^"]*)">', page.text)
    assert listed is not None
    later = [path.removeprefix("/web/") for path in listed.group(1).split()]
    assert "js/shell.js" in later
    everything = sorted(f"js/{path.name}" for path in (WEB_DIR / "js").glob("*.js"))
    assert sorted(preloaded + later) == everything  # each module once, in one list or the other
    for path in ("/", "/web/app.css", "/web/js/main.js"):
        first = await gateway.client.get(path)
        assert first.headers["cache-control"] == "no-cache", path
        again = await gateway.client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert (again.status_code, again.content) == (304, b""), path
        assert again.headers["content-security-policy"] == first.headers["content-security-policy"]
    module = await gateway.client.get("/web/js/main.js")
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"


def test_page_loads_are_not_rate_limited() -> None:
    """The web app is 17 files: they never count against the API's limit."""
    settings = settings_from_env({}, rate_limit_per_minute=60.0, rate_limit_burst=5)
    app = Litestar(
        route_handlers=[web_router(), _api_stand_in],
        middleware=[rate_limit_middleware],
        state=State({"rate_limiter": RateLimiter(settings)}),
    )
    with TestClient(app) as client:
        for _ in range(3):  # three loads of the page and all its files
            for path in ["/", *(f"/web/{name}" for name in load_assets())]:
                assert client.get(path).status_code == 200, path
        answers = [client.get("/v1/stand-in").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]


@get("/v1/stand-in", sync_to_thread=False)
def _api_stand_in() -> str:
    return "ok"


def test_the_page_weighs_under_200_kb() -> None:
    total = sum(path.stat().st_size for path in WEB_DIR.rglob("*") if path.is_file())
    assert total <= 200_000, f"{total} bytes"


def test_no_html_strings_are_built_from_data() -> None:
    """The XSS rule of the web app, checked in its source: no innerHTML-like sinks at all."""
    for path in (WEB_DIR / "js").glob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"


async def test_session_cookie_is_httponly_strict_and_path_scoped(gateway: Gateway) -> None:
    username = await _account(gateway)
    credentials = {"username": username, "password": PASSWORD}
    async with httpx.AsyncClient(base_url=gateway.url) as browser:
        started = await browser.post(SESSION_PATH, json=credentials, headers=CSRF)
        assert started.status_code == 200, started.text
        assert "refresh_token" not in started.json()  # never readable by the page
        session = msgspec.json.decode(started.content, type=Session)
        assert session.user.username == username
        header = started.headers["set-cookie"]
        assert "HttpOnly" in header
        assert "SameSite=strict" in header or "SameSite=Strict" in header
        assert f"Path={SESSION_PATH}" in header
        first = _cookie(started)[REFRESH_COOKIE].value

        me = await browser.get(
            "/v1/auth/me", headers={"Authorization": f"Bearer {session.access_token}"}
        )
        assert me.json()["username"] == username

        refreshed = await browser.post(f"{SESSION_PATH}/refresh", headers=CSRF)
        assert refreshed.status_code == 200, refreshed.text
        second = _cookie(refreshed)[REFRESH_COOKIE].value
        assert second
        assert second != first  # rotated

        # a spent cookie (stolen and replayed) revokes the whole login
        replayed = await gateway.client.post(
            f"{SESSION_PATH}/refresh", headers=CSRF | _with_cookie(first)
        )
        assert replayed.status_code == 401
        assert "reused" in replayed.json()["detail"]
        after = await browser.post(f"{SESSION_PATH}/refresh", headers=CSRF)
        assert after.status_code == 401


async def test_sign_out_revokes_and_clears_the_cookie(gateway: Gateway) -> None:
    username = await _account(gateway)
    async with httpx.AsyncClient(base_url=gateway.url) as browser:
        started = await browser.post(
            SESSION_PATH, json={"username": username, "password": PASSWORD}, headers=CSRF
        )
        token = _cookie(started)[REFRESH_COOKIE].value
        ended = await browser.delete(SESSION_PATH, headers=CSRF)
        assert ended.status_code == 204
        assert "Max-Age=0" in ended.headers["set-cookie"]
        again = await gateway.client.post(
            f"{SESSION_PATH}/refresh", headers=CSRF | _with_cookie(token)
        )
        assert again.status_code == 401


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "X-Requested-With"),
        (CSRF | {"Origin": "https://evil.example"}, "origin https://evil.example"),
        (CSRF | {"Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ],
    ids=["no-header", "foreign-origin", "cross-site-fetch"],
)
async def test_session_routes_refuse_other_sites(
    gateway: Gateway, headers: dict[str, str], reason: str
) -> None:
    username = await _account(gateway)
    credentials = {"username": username, "password": PASSWORD}
    for method, path, body in [
        ("POST", SESSION_PATH, credentials),
        ("POST", f"{SESSION_PATH}/refresh", None),
        ("DELETE", SESSION_PATH, None),
    ]:
        response = await gateway.client.request(
            method, path, json=body, headers=headers | _with_cookie("x")
        )
        assert response.status_code == 403, (path, response.text)
        assert reason in response.json()["detail"]
    own = CSRF | {"Origin": gateway.url, "Sec-Fetch-Site": "same-origin"}
    async with httpx.AsyncClient(base_url=gateway.url) as browser:
        assert (await browser.post(SESSION_PATH, json=credentials, headers=own)).is_success


async def test_media_links_play_one_track_for_its_owner_only(
    gateway: Gateway, tmp_path: Path
) -> None:
    _, alice = await gateway.new_user("alice")
    _, bob = await gateway.new_user("bob")
    first, second = tmp_path / "one.wav", tmp_path / "two.wav"
    write_track(first, bpm=100, key="C", mode="major", seconds=2, format="WAV")
    write_track(second, bpm=110, key="D", mode="minor", seconds=2, format="WAV", seed=5)
    one = await upload(gateway, alice, first)
    two = await upload(gateway, alice, second)

    answer = await gateway.client.get(f"/v1/tracks/{one.track_id}/media-links", headers=alice)
    assert answer.status_code == 200, answer.text
    links = msgspec.json.decode(answer.content, type=MediaLinks)
    audio = await gateway.client.get(links.audio)  # no Authorization header
    assert audio.status_code == 200
    assert audio.content == first.read_bytes()
    ranged = await gateway.client.get(links.audio, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.content == first.read_bytes()[:100]

    token = links.audio.split("media_token=", 1)[1]
    other_track = await gateway.client.get(
        f"/v1/tracks/{two.track_id}/audio", params={"media_token": token}
    )
    assert other_track.status_code == 401
    assert "another track" in other_track.json()["detail"]
    for path in (f"/v1/tracks/{one.track_id}", "/v1/tracks"):  # not an access token
        assert (await gateway.client.get(path, params={"media_token": token})).status_code == 401
    as_bearer = await gateway.client.get(
        f"/v1/tracks/{one.track_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert as_bearer.status_code == 401
    assert "not an access token" in as_bearer.json()["detail"]

    stranger = await gateway.client.get(f"/v1/tracks/{one.track_id}/media-links", headers=bob)
    assert stranger.status_code == 404
