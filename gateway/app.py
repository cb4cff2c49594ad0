"""The gateway's app factory: controllers, middleware and the OpenAPI document in one place.

`open_services` is entered in the lifespan and the resulting `Services` is injected as
`services` into every handler; the app itself does no work at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from gateway.auth import jwt_secret
from gateway.auth.middleware import auth_middleware
from gateway.controllers.admin import AdminController
from gateway.controllers.auth import AuthController
from gateway.controllers.health import HealthController
from gateway.controllers.identify import IdentifyController
from gateway.controllers.media import MediaController
from gateway.controllers.progress import ProgressController, progress_socket
from gateway.controllers.search import SearchController
from gateway.controllers.session import SessionController
from gateway.controllers.tracks import TracksController
from gateway.controllers.web import web_router
from gateway.metrics import Metrics, metrics_middleware
from gateway.ratelimit import RateLimiter, rate_limit_middleware
from gateway.requestid import request_id_middleware
from gateway.services import Services
from schemas.settings import Settings

ServicesFactory = Callable[[], AbstractAsyncContextManager[Services]]


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def _metrics(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics


def create_app(settings: Settings, open_services: ServicesFactory) -> Litestar:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services() as services:
            app.state.services = services
            jwt_secret(app.state, services.settings)  # a bad configured secret fails start-up
            async with metrics.observe_pipeline(services):
                yield

    openapi = OpenAPIConfig(
        title="Tonestream",
        version="1",
        description="Self-hosted music intelligence: upload audio, follow its analysis live, "
        "search by similarity, text, image or an audio example.",
        path="/schema",
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An access token from /v1/auth/login, or an API key",
                )
            }
        ),
    )
    return Litestar(
        route_handlers=[
            HealthController,
            AuthController,
            SessionController,
            TracksController,
            MediaController,
            SearchController,
            IdentifyController,
            ProgressController,
            progress_socket,
            AdminController,
            web_router(),
        ],
        dependencies={
            "services": Provide(_services, sync_to_thread=False),
            "metrics": Provide(_metrics, sync_to_thread=False),
        },
        middleware=[
            request_id_middleware,
            metrics_middleware,
            auth_middleware,
            rate_limit_middleware,
        ],
        state=State({"metrics": metrics, "rate_limiter": RateLimiter(settings)}),
        lifespan=[lifespan],
        openapi_config=openapi,
        cors_config=_cors(settings.cors_origins),
    )


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    return CORSConfig(allow_origins=list(origins), allow_credentials=True) if origins else None
