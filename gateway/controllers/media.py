"""`/v1/tracks/{id}/media-links`: URLs a browser element can load without sending headers.

`<audio src>` (and a download link) cannot carry an Authorization header. The web app asks,
with its access token, for a link that embeds a media token: signed, valid for one track's
media only, for as long as an access token lives. The owner check happens here and again when
the link is used, so per-user isolation holds (another user's id: 404).
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State

from gateway.auth import BEARER, jwt_secret
from gateway.auth.tokens import issue_media_token
from gateway.controllers.tracks import TrackId, require_track
from gateway.deps import ServicesDep
from gateway.errors import AUTHENTICATED, NotFoundException
from schemas.api import MediaLinks, TrackLinks, User


class MediaController(Controller):
    path = "/v1/tracks"
    tags = ["tracks"]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER

    @get(
        "/{track_id:str}/media-links",
        operation_id="trackMediaLinks",
        raises=[*AUTHENTICATED, NotFoundException],
    )
    async def media_links(
        self, request: Request[User, Any, State], services: ServicesDep, track_id: TrackId
    ) -> MediaLinks:
        """A link to the track's audio that works without headers, for a short while."""
        await require_track(services, request.user.user_id, track_id)
        ttl_s = services.settings.access_token_ttl_s
        secret = jwt_secret(request.app.state, services.settings)
        token = issue_media_token(request.user, track_id, secret, ttl_s)
        return MediaLinks(
            audio=f"{TrackLinks.of(track_id).audio}?media_token={token}",
            expires_at=time.time() + ttl_s,
        )
