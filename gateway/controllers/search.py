"""Search: one endpoint for any mix of text, an image, an audio example and track ids."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.auth import BEARER
from gateway.deps import ServicesDep
from gateway.errors import (
    AUTHENTICATED,
    ConflictError,
    NotFoundException,
    UnprocessableError,
)
from gateway.search.engine import SearchEngine
from schemas.api import SearchRequest, SearchResults, User


class SearchController(Controller):
    path = "/v1/search"
    tags = ["search"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER

    @post(
        "/",
        operation_id="search",
        status_code=HTTP_200_OK,
        # the 400 is declared by Litestar for the body's validation
        raises=[
            *AUTHENTICATED,
            NotFoundException,
            ConflictError,
            UnprocessableError,
        ],
        description="Fuses one ranking from every input given (weighted reciprocal-rank fusion); "
        "each hit says which inputs matched it. Without semantic vectors, text is matched by "
        "music words (the models' tags, with synonyms, ranked by probability) and metadata "
        "words (`text_mode`, `notes`).",
    )
    async def search(
        self,
        request: Request[User, Any, State],
        services: ServicesDep,
        data: JSONBody[SearchRequest],
    ) -> SearchResults:
        return await SearchEngine(services, request.user.user_id).search(data)
