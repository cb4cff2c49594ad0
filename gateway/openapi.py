"""OpenAPI details the route signatures cannot express: the streamed upload's request body."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from gateway.uploads import FILE_FIELD

_BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


@dataclass
class UploadOperation(Operation):
    """`POST /v1/tracks` reads its body as a stream, so Litestar sees no `data` to document."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The audio file, as the raw body or as the multipart field "
            f"`{FILE_FIELD}`. Its content decides what it is, never its name.",
            content={
                "application/octet-stream": OpenAPIMediaType(schema=_BINARY),
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={FILE_FIELD: _BINARY},
                        required=[FILE_FIELD],
                    )
                ),
            },
        )
