"""Authentication for the gateway: JWT access tokens, API keys, the middleware and guards.

`Credential` is what the middleware puts in `request.auth`: how the caller proved who it is.
The rate limiter keys on `f"{kind}:{subject}"`, so each API key gets its own budget while all
access tokens of a user share one.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar.datastructures import State
from litestar.openapi.spec import SecurityRequirement

from gateway.auth.tokens import load_jwt_secret
from schemas.settings import Settings

BEARER: list[SecurityRequirement] = [{"bearer": []}]
"""OpenAPI security of routes that need credentials (health, docs and login routes do not)."""


class Credential(msgspec.Struct, kw_only=True, frozen=True):
    kind: Literal["jwt", "api_key", "media"]
    subject: str  # the user id for access and media tokens, the key id for API keys


def jwt_secret(state: State, settings: Settings) -> bytes:
    """The gateway's signing key, loaded (or generated) on first use and kept in `state`."""
    secret: bytes | None = state.get("jwt_secret")
    if secret is None:
        secret = load_jwt_secret(settings)
        state.jwt_secret = secret
    return secret
