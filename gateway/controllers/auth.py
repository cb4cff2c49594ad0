"""`/v1/auth`: accounts, logins and API keys.

Logging in gives a short-lived access token (a JWT, checked without a database round trip) and
a single-use refresh token that is rotated on every refresh; presenting a spent refresh token
revokes every session of that login. API keys are for scripts; their secret is shown once.
"""

from __future__ import annotations

import re

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.params import FromPath, JSONBody
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_204_NO_CONTENT,
)

from gateway.auth import BEARER, Credential, jwt_secret
from gateway.auth.tokens import issue_access_token
from gateway.deps import ServicesDep
from gateway.errors import AUTHENTICATED, ConflictError
from gateway.services import Services
from schemas.api import (
    ApiKeyInfo,
    CreatedApiKey,
    Credentials,
    NewApiKey,
    RefreshRequest,
    TokenPair,
    User,
)
from stores.accounts import InvalidRefreshToken, RefreshTokenReused, UsernameTaken

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
PASSWORD_LENGTH = (8, 1024)
API_KEY_NAME_LENGTH = (1, 100)

AuthRequest = Request[User, Credential, State]


def access_token(services: Services, state: State, user: User) -> str:
    return issue_access_token(
        user, jwt_secret(state, services.settings), services.settings.access_token_ttl_s
    )


def _token_pair(services: Services, state: State, user: User, refresh_token: str) -> TokenPair:
    ttl_s = int(services.settings.access_token_ttl_s)
    return TokenPair(
        access_token=access_token(services, state, user),
        refresh_token=refresh_token,
        expires_in=ttl_s,
    )


async def log_in(services: Services, credentials: Credentials) -> tuple[User, str]:
    """The user and a new refresh token, or 401."""
    user = await services.accounts.authenticate(credentials.username, credentials.password)
    if user is None:
        raise NotAuthorizedException(detail="invalid username or password")
    return user, await services.accounts.issue_refresh_token(user.user_id)


async def rotate(services: Services, refresh_token: str) -> tuple[User, str]:
    """Spend a refresh token: the user and its successor, or 401 with the reason."""
    try:
        return await services.accounts.rotate_refresh_token(refresh_token)
    except RefreshTokenReused:
        raise NotAuthorizedException(
            detail="refresh token reused; all sessions of this login were revoked"
        ) from None
    except InvalidRefreshToken as exc:
        raise NotAuthorizedException(detail=str(exc)) from None


async def revoke(services: Services, refresh_token: str) -> None:
    try:
        await services.accounts.revoke_family_of(refresh_token)
    except InvalidRefreshToken as exc:
        raise NotAuthorizedException(detail=str(exc)) from None


class AuthController(Controller):
    path = "/v1/auth"
    tags = ("auth",)

    @post(
        "/register",
        operation_id="register",
        status_code=HTTP_201_CREATED,
        raises=[PermissionDeniedException, ConflictError, TooManyRequestsException],
    )
    async def register(self, data: JSONBody[Credentials], services: ServicesDep) -> User:
        """Create an account (when the gateway allows self-registration)."""
        if not services.settings.allow_registration:
            raise PermissionDeniedException(detail="registration is disabled on this gateway")
        if not USERNAME.fullmatch(data.username):
            raise ClientException(
                detail="username must be 3–64 characters: a-z, 0-9, '_', '.', '-', "
                "starting with a letter or digit"
            )
        low, high = PASSWORD_LENGTH
        if not low <= len(data.password) <= high:
            raise ClientException(detail=f"password must be {low}–{high} characters")
        try:
            return await services.accounts.create_user(data.username, data.password)
        except UsernameTaken:
            raise ConflictError(detail=f"username {data.username!r} is taken") from None

    @post("/login", operation_id="login", status_code=HTTP_200_OK, raises=AUTHENTICATED)
    async def login(
        self, data: JSONBody[Credentials], services: ServicesDep, state: State
    ) -> TokenPair:
        """Exchange a username and password for an access token and a refresh token."""
        user, refresh_token = await log_in(services, data)
        return _token_pair(services, state, user, refresh_token)

    @post("/refresh", operation_id="refresh", status_code=HTTP_200_OK, raises=AUTHENTICATED)
    async def refresh(
        self, data: JSONBody[RefreshRequest], services: ServicesDep, state: State
    ) -> TokenPair:
        """Spend a refresh token for a new pair; each refresh token works once."""
        user, refresh_token = await rotate(services, data.refresh_token)
        return _token_pair(services, state, user, refresh_token)

    @post(
        "/logout",
        operation_id="logout",
        status_code=HTTP_204_NO_CONTENT,
        raises=AUTHENTICATED,
        security=BEARER,
    )
    async def logout(self, data: JSONBody[RefreshRequest], services: ServicesDep) -> None:
        """Revoke the refresh token and every token rotated from the same login."""
        await revoke(services, data.refresh_token)

    @get("/me", operation_id="whoami", security=BEARER, raises=AUTHENTICATED)
    async def me(self, request: AuthRequest) -> User:
        """The caller, as the gateway sees it."""
        return request.user

    @post(
        "/api-keys",
        operation_id="createApiKey",
        status_code=HTTP_201_CREATED,
        security=BEARER,
        raises=AUTHENTICATED,
    )
    async def create_api_key(
        self, data: JSONBody[NewApiKey], request: AuthRequest, services: ServicesDep
    ) -> CreatedApiKey:
        """A new API key for the caller; the response is the only time its secret is shown."""
        low, high = API_KEY_NAME_LENGTH
        if not low <= len(data.name.strip()) <= high:
            raise ClientException(detail=f"API key name must be {low}–{high} characters")
        return await services.accounts.create_api_key(request.user.user_id, data.name.strip())

    @get("/api-keys", operation_id="listApiKeys", security=BEARER, raises=AUTHENTICATED)
    async def list_api_keys(self, request: AuthRequest, services: ServicesDep) -> list[ApiKeyInfo]:
        """The caller's API keys (without their secrets)."""
        return await services.accounts.list_api_keys(request.user.user_id)

    @delete(
        "/api-keys/{key_id:str}",
        operation_id="revokeApiKey",
        raises=[*AUTHENTICATED, NotFoundException],
        security=BEARER,
    )
    async def revoke_api_key(
        self, key_id: FromPath[str], request: AuthRequest, services: ServicesDep
    ) -> None:
        """Revoke one of the caller's API keys; it stops working at once."""
        if not await services.accounts.revoke_api_key(request.user.user_id, key_id):
            raise NotFoundException(detail=f"no API key {key_id!r}")
