"""The gateway's error answers as exception types, so each route can declare (`raises=`) what
it may answer in the OpenAPI document, and unexpected errors are logged with their traceback."""

from __future__ import annotations

from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from litestar.status_codes import (
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
    HTTP_422_UNPROCESSABLE_ENTITY,
)


class ConflictError(ClientException):
    status_code = HTTP_409_CONFLICT


class PayloadTooLargeError(ClientException):
    status_code = HTTP_413_REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaError(ClientException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


class RangeNotSatisfiableError(ClientException):
    status_code = HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE


class UnprocessableError(ClientException):
    status_code = HTTP_422_UNPROCESSABLE_ENTITY


AUTHENTICATED: list[type[HTTPException]] = [NotAuthorizedException, TooManyRequestsException]
"""What any route behind authentication may answer besides its own errors."""

__all__ = [
    "AUTHENTICATED",
    "ClientException",
    "ConflictError",
    "NotFoundException",
    "PayloadTooLargeError",
    "PermissionDeniedException",
    "RangeNotSatisfiableError",
    "ServiceUnavailableException",
    "UnprocessableError",
    "UnsupportedMediaError",
]
