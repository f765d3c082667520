"""The FastAPI app of the serving API, around one running Workbench.

``create_api(wb)`` builds it from :data:`ROUTERS`; another feature adds its routes by
appending a router there (or passing ``routers=``) before the app is built. Model names
are resolved in one place, ``Workbench.resolve_model``.
"""
from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI

from workbench.api import (routes_admin, routes_feedback, routes_metrics, routes_openai,
                           routes_router)
from workbench.api.auth import APISettings
from workbench.api.contract import install_contract
from workbench.api.errors import install_handlers
from workbench.api.middleware import BodyLimit, CatchAll
from workbench.service.workbench import Workbench

# Included in this order by create_api.
ROUTERS: list[APIRouter] = [routes_openai.router, routes_feedback.router, routes_admin.router,
                            routes_router.router, routes_metrics.router]


def create_api(wb: Workbench, settings: APISettings | None = None,
               routers: list[APIRouter] | None = None) -> FastAPI:
    """The API app: OpenAI-compatible inference, vLLM-shaped adapter admin, /metrics."""
    settings = settings or APISettings()
    app = FastAPI(title="GLM support workbench API", version="1", docs_url="/v1/docs",
                  openapi_url="/v1/openapi.json", redoc_url=None)
    app.state.wb, app.state.settings, app.state.started = wb, settings, time.time()
    install_handlers(app)
    for router in routers if routers is not None else ROUTERS:
        app.include_router(router)
    install_contract(app)  # /v1/openapi.json: every status, envelope and constraint

    def limit_for(path: str) -> int | None:
        if not path.startswith("/v1/"):
            return None  # the UI (when mounted here) has its own upload cap
        return settings.max_upload_bytes if path == routes_admin.UPLOAD_PATH else settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(CatchAll)
    return app
