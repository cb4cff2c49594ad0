"""JWT access and media tokens: short-lived, HS256-signed, checked without a database round trip.

A media token (`typ: media`) names one track and is good only on that track's media paths:
`<audio src>` cannot send an Authorization header, so the web app puts it in the URL instead.

Only HS256 is accepted, so a token cannot pick its own algorithm ("none", or RS256 with the
secret passed off as a public key). The signing key comes from settings or is generated once
into the data directory with owner-only permissions, so restarts keep sessions valid.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Any

import jwt

from schemas.api import User
from schemas.settings import Settings

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # HS256 wants a key at least as long as its 256-bit hash


class TokenError(Exception):
    """The access token is not acceptable; `reason` says why, for the 401 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_jwt_secret(settings: Settings) -> bytes:
    """`settings.jwt_secret`, or the key in `<data_dir>/secrets/jwt.key`, created if missing."""
    if settings.jwt_secret:
        secret = settings.jwt_secret.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"TONESTREAM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return secret
    if settings.replicated:
        raise ValueError(
            "TONESTREAM_REPLICATED is set but TONESTREAM_JWT_SECRET is empty: each gateway "
            "replica would sign with its own generated key; give them all one secret"
        )
    directory = settings.data_path / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "jwt.key"
    if not path.exists():
        # written under a private name, then linked into place: another process starting at the
        # same time either wins the link or reads the winner's complete key
        staging = directory / f".jwt.key.{uuid.uuid4().hex}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return path.read_text().strip().encode()


def issue_access_token(user: User, secret: bytes, ttl_s: float) -> str:
    now = int(time.time())
    claims = {
        "sub": user.user_id,
        "username": user.username,
        "role": user.role,
        "iat": now,
        "exp": now + int(ttl_s),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _reason(exc: jwt.InvalidTokenError, typ: str) -> str:
    match exc:
        case jwt.ExpiredSignatureError():
            return f"{typ} token expired"
        case jwt.InvalidSignatureError():
            return f"{typ} token signature does not verify"
        case jwt.InvalidAlgorithmError():
            return f"{typ} token algorithm not allowed (only {ALGORITHM})"
        case jwt.MissingRequiredClaimError():
            return f"{typ} token has no '{exc.claim}' claim"
        case jwt.DecodeError():
            return f"{typ} token is malformed"
        case _:
            return f"invalid {typ} token: {exc}"


def issue_media_token(user: User, track_id: str, secret: bytes, ttl_s: float) -> str:
    now = int(time.time())
    claims = {
        "sub": user.user_id,
        "username": user.username,
        "role": user.role,
        "track": track_id,
        "iat": now,
        "exp": now + int(ttl_s),
        "typ": "media",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _claims(token: str, secret: bytes, typ: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.InvalidTokenError as exc:
        raise TokenError(_reason(exc, typ)) from None
    if claims.get("typ") != typ:
        raise TokenError(f"not an {typ} token" if typ == "access" else f"not a {typ} token")
    return claims


def decode_media_token(token: str, secret: bytes, track_id: str) -> User:
    """The user a media token was issued to, if it was issued for `track_id`."""
    claims = _claims(token, secret, "media")
    if claims.get("track") != track_id:
        raise TokenError("media token is for another track")
    return _user(claims, "media")


def decode_access_token(token: str, secret: bytes) -> User:
    return _user(_claims(token, secret, "access"), "access")


def _user(claims: dict[str, Any], typ: str) -> User:
    username, role = claims.get("username"), claims.get("role")
    if not isinstance(username, str) or role not in ("user", "admin"):
        raise TokenError(f"{typ} token lacks a username or a valid role")
    return User(user_id=claims["sub"], username=username, role=role)
