"""Access tokens: what is accepted, what is refused and why, and where the signing key lives."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from gateway.auth.tokens import (
    TokenError,
    decode_access_token,
    decode_media_token,
    issue_access_token,
    issue_media_token,
    load_jwt_secret,
)
from schemas.api import User
from schemas.settings import settings_from_env

SECRET = b"s" * 64  # long enough for HS512 too (the HS512 case must fail on its algorithm)
USER = User(user_id="0123456789abcdef0123456789abcdef", username="ada", role="admin")


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": USER.user_id,
        "username": USER.username,
        "role": USER.role,
        "iat": now,
        "exp": now + 60,
        "typ": "access",
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def test_round_trip() -> None:
    token = issue_access_token(USER, SECRET, 60)
    assert decode_access_token(token, SECRET) == USER
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert decoded["exp"] - decoded["iat"] == 60
    assert decoded["jti"]


def _encode(key: bytes | str = SECRET, algorithm: str = "HS256", **changes: object) -> str:
    return jwt.encode(claims(**changes), key, algorithm=algorithm)


REFUSED: dict[str, tuple[Callable[[], str], str]] = {
    "alg-none": (lambda: _encode("", "none"), "algorithm not allowed"),
    "alg-hs512": (lambda: _encode(algorithm="HS512"), "algorithm not allowed"),
    "wrong-key": (lambda: _encode(b"w" * 64), "signature does not verify"),
    "expired": (lambda: _encode(iat=int(time.time()) - 120, exp=int(time.time()) - 60), "expired"),
    "no-exp": (lambda: _encode(exp=None), "no 'exp' claim"),
    "no-iat": (lambda: _encode(iat=None), "no 'iat' claim"),
    "no-sub": (lambda: _encode(sub=None), "no 'sub' claim"),
    "not-access": (lambda: _encode(typ="refresh"), "not an access token"),
    "bad-role": (lambda: _encode(role="root"), "valid role"),
    "garbage": (lambda: "not.a.jwt", "malformed"),
}


@pytest.mark.parametrize(("make_token", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(make_token: Callable[[], str], reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        decode_access_token(make_token(), SECRET)


TRACK = "ab" * 16


def test_media_token_is_for_one_track_and_nothing_else() -> None:
    token = issue_media_token(USER, TRACK, SECRET, 60)
    assert decode_media_token(token, SECRET, TRACK) == USER
    with pytest.raises(TokenError, match="another track"):
        decode_media_token(token, SECRET, "cd" * 16)
    with pytest.raises(TokenError, match="not an access token"):
        decode_access_token(token, SECRET)
    with pytest.raises(TokenError, match="not a media token"):
        decode_media_token(issue_access_token(USER, SECRET, 60), SECRET, TRACK)
    with pytest.raises(TokenError, match="media token signature does not verify"):
        decode_media_token(token, b"w" * 64, TRACK)
    expired = issue_media_token(USER, TRACK, SECRET, -1)
    with pytest.raises(TokenError, match="media token expired"):
        decode_media_token(expired, SECRET, TRACK)


def test_secret_from_settings() -> None:
    settings = settings_from_env({}, jwt_secret="k" * 40)
    assert load_jwt_secret(settings) == b"k" * 40
    with pytest.raises(ValueError, match="at least 32 bytes"):
        load_jwt_secret(settings_from_env({}, jwt_secret="short"))


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    settings = settings_from_env({}, data_dir=str(tmp_path / "data"))
    secret = load_jwt_secret(settings)
    assert len(secret) >= 32
    assert load_jwt_secret(settings) == secret
    key = tmp_path / "data" / "secrets" / "jwt.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert list(key.parent.iterdir()) == [key]  # the staging file is gone
