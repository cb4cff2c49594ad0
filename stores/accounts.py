"""Users, API keys and refresh tokens: who may call the gateway, kept in the catalog's MongoDB.

Secrets are never stored. Passwords are hashed with argon2id (slow on purpose; verified on a
worker thread so the event loop keeps serving). API-key and refresh-token secrets are 256-bit
random strings, so a plain SHA-256 is enough and keeps per-request key checks cheap.

Refresh tokens rotate: each one is good for a single use and is replaced by a new token of the
same *family* (one family per login). Presenting a token twice means it leaked — the thief or the
owner already used it — so the whole family is revoked and both have to log in again.

- `users`: `_id` = user_id (hex uuid4, also the tenant name in NATS subjects), unique username;
- `api_keys`: `_id` = key_id, the owner's user_id, the secret's hash; a key is `tsk_<id>_<secret>`;
- `refresh_tokens`: `_id` = token_id, family, user_id, the secret's hash, expires_at, used,
  revoked; a token is `rt_<id>.<secret>`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.api import ApiKeyInfo, CreatedApiKey, Role, User
from schemas.settings import Settings

Document = dict[str, Any]

API_KEY_PREFIX = "tsk_"
REFRESH_TOKEN_PREFIX = "rt_"
LAST_USED_RESOLUTION_S = 60.0  # `last_used_at` is rewritten at most this often per key

_hasher = PasswordHasher()


class UsernameTaken(Exception):  # noqa: N818 - the name says what the caller handles
    """Another user already has this username."""


class InvalidRefreshToken(Exception):  # noqa: N818 - the name says what the caller handles
    """The refresh token is malformed, unknown, expired or its user is gone; str() says which."""


class RefreshTokenReused(Exception):  # noqa: N818 - the name says what the caller handles
    """A used refresh token (or one of a revoked family) was presented; its family is revoked."""


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown usernames, so they cost as much as wrong passwords."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str | None, password: str) -> bool:
    """None (an unknown user) is checked against a dummy hash and fails, taking the same time."""
    try:
        _hasher.verify(password_hash or _dummy_hash(), password)
    except VerificationError:
        return False
    return password_hash is not None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(_digest(secret), digest)


def _split(value: str, prefix: str, separator: str) -> tuple[str, str] | None:
    """`<prefix><id><separator><secret>` → (id, secret); ids are hex, so the first separator ends
    the id."""
    if not value.startswith(prefix):
        return None
    ident, sep, secret = value.removeprefix(prefix).partition(separator)
    return (ident, secret) if sep and ident and secret else None


def _user(doc: Document) -> User:
    role: Role = doc["role"]
    return User(user_id=doc["_id"], username=doc["username"], role=role)


class Accounts:
    def __init__(self, db: AsyncDatabase[Document], settings: Settings) -> None:
        self.settings = settings
        self.users: AsyncCollection[Document] = db["users"]
        self.api_keys: AsyncCollection[Document] = db["api_keys"]
        self.refresh_tokens: AsyncCollection[Document] = db["refresh_tokens"]

    async def ensure_indexes(self) -> None:
        await self.users.create_index("username", unique=True, name="username_unique")
        await self.api_keys.create_index("user_id", name="user_id")
        await self.refresh_tokens.create_index("family", name="family")

    # -- users ----------------------------------------------------------------------------------
    async def create_user(self, username: str, password: str, role: Role = "user") -> User:
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        doc = {
            "_id": uuid.uuid4().hex,
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "created_at": time.time(),
        }
        try:
            await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise UsernameTaken(username) from None
        return _user(doc)

    async def authenticate(self, username: str, password: str) -> User | None:
        doc = await self.users.find_one({"username": username})
        password_hash = doc["password_hash"] if doc else None
        if not await asyncio.to_thread(_verify, password_hash, password) or doc is None:
            return None
        if _hasher.check_needs_rehash(doc["password_hash"]):
            new_hash = await asyncio.to_thread(_hasher.hash, password)
            await self.users.update_one({"_id": doc["_id"]}, {"$set": {"password_hash": new_hash}})
        return _user(doc)

    async def get_user(self, user_id: str) -> User | None:
        doc = await self.users.find_one({"_id": user_id})
        return _user(doc) if doc else None

    # -- API keys -------------------------------------------------------------------------------
    async def create_api_key(self, user_id: str, name: str) -> CreatedApiKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        created_at = time.time()
        await self.api_keys.insert_one(
            {
                "_id": key_id,
                "user_id": user_id,
                "name": name,
                "secret_sha256": _digest(secret),
                "created_at": created_at,
                "last_used_at": None,
            }
        )
        api_key = f"{API_KEY_PREFIX}{key_id}_{secret}"
        return CreatedApiKey(key_id=key_id, name=name, created_at=created_at, api_key=api_key)

    async def list_api_keys(self, user_id: str) -> list[ApiKeyInfo]:
        cursor = self.api_keys.find({"user_id": user_id}).sort("created_at", ASCENDING)
        return [
            ApiKeyInfo(
                key_id=doc["_id"],
                name=doc["name"],
                created_at=doc["created_at"],
                last_used_at=doc["last_used_at"],
            )
            async for doc in cursor
        ]

    async def revoke_api_key(self, user_id: str, key_id: str) -> bool:
        result = await self.api_keys.delete_one({"_id": key_id, "user_id": user_id})
        return result.deleted_count == 1

    async def user_for_api_key(self, api_key: str) -> tuple[User, str] | None:
        """The key's owner and the key id, or None for a malformed, unknown or revoked key."""
        parts = _split(api_key, API_KEY_PREFIX, "_")
        if parts is None:
            return None
        key_id, secret = parts
        doc = await self.api_keys.find_one({"_id": key_id})
        if doc is None or not _matches(secret, doc["secret_sha256"]):
            return None
        user = await self.get_user(doc["user_id"])
        if user is None:
            return None
        now = time.time()
        if doc["last_used_at"] is None or now - doc["last_used_at"] >= LAST_USED_RESOLUTION_S:
            await self.api_keys.update_one({"_id": key_id}, {"$set": {"last_used_at": now}})
        return user, key_id

    # -- refresh tokens -------------------------------------------------------------------------
    async def issue_refresh_token(self, user_id: str, family: str | None = None) -> str:
        """A new single-use refresh token; `family` None starts a new one (a new login)."""
        token_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(32)
        now = time.time()
        await self.refresh_tokens.insert_one(
            {
                "_id": token_id,
                "family": family or uuid.uuid4().hex,
                "user_id": user_id,
                "secret_sha256": _digest(secret),
                "created_at": now,
                "expires_at": now + self.settings.refresh_token_ttl_s,
                "used": False,
                "revoked": False,
            }
        )
        return f"{REFRESH_TOKEN_PREFIX}{token_id}.{secret}"

    async def _find_refresh_token(self, token: str) -> Document:
        parts = _split(token, REFRESH_TOKEN_PREFIX, ".")
        if parts is None:
            raise InvalidRefreshToken("malformed refresh token")
        token_id, secret = parts
        doc = await self.refresh_tokens.find_one({"_id": token_id})
        if doc is None or not _matches(secret, doc["secret_sha256"]):
            raise InvalidRefreshToken("unknown refresh token")
        return doc

    async def _revoke_family(self, family: str) -> None:
        await self.refresh_tokens.update_many({"family": family}, {"$set": {"revoked": True}})

    async def rotate_refresh_token(self, token: str) -> tuple[User, str]:
        """Spend `token` and return its user and the next token of its family.

        A token of a revoked family is refused even when its own flag is not set yet: a rotation
        racing with a revocation may insert its new token after the revocation's update, but the
        family's older tokens are then revoked, and that is what this checks.
        """
        doc = await self._find_refresh_token(token)
        family = doc["family"]
        family_revoked = await self.refresh_tokens.find_one(
            {"family": family, "revoked": True}, projection={"_id": True}
        )
        if doc["used"] or family_revoked is not None:
            await self._revoke_family(family)
            raise RefreshTokenReused(family)
        if doc["expires_at"] <= time.time():
            raise InvalidRefreshToken("refresh token expired")
        spent = await self.refresh_tokens.find_one_and_update(
            {"_id": doc["_id"], "used": False, "revoked": False},
            {"$set": {"used": True, "used_at": time.time()}},
        )
        if spent is None:  # a concurrent request spent (or revoked) it first
            await self._revoke_family(family)
            raise RefreshTokenReused(family)
        user = await self.get_user(doc["user_id"])
        if user is None:
            raise InvalidRefreshToken("the token's user no longer exists")
        return user, await self.issue_refresh_token(user.user_id, family)

    async def revoke_family_of(self, token: str) -> None:
        """Log out: revoke `token` and every token rotated from the same login."""
        doc = await self._find_refresh_token(token)
        await self._revoke_family(doc["family"])
