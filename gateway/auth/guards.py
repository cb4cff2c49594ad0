"""Route guards on top of authentication: which authenticated callers may use a route."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from schemas.api import User


def admin_only(connection: ASGIConnection[Any, User, Any, State], _: BaseRouteHandler) -> None:
    if connection.scope.get("method") == "OPTIONS":  # preflights carry no credentials
        return
    if connection.user.role != "admin":
        raise PermissionDeniedException(detail="admin role required")
