"""HTTP interface: thin FastAPI routers over the node's services, one file per service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fastapi import FastAPI

from radbank import __version__
from radbank.api import (
    access,
    audit,
    consents,
    dose,
    errors,
    health,
    projects,
    qido,
    rendered,
    semantic,
    stow,
    users,
    wado,
)
from radbank.api.access_log import AccessLog
from radbank.api.limits import BodyLimit
from radbank.launcher import settle_heap

if TYPE_CHECKING:  # radbank.app imports this package
    from radbank.app import Services

__all__ = ["build_api"]


def build_api(services: Services) -> FastAPI:
    # Anonymous callers reach /healthz, sign-in and open-access projects only; the schema is
    # served to signed-in users.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        title="radbank",
        version=__version__,
        description=(
            "A node of a network of research repositories of de-identified medical images "
            "and radiation dose data. DICOMweb (STOW-RS, QIDO-RS, WADO-RS) per project, "
            "REST administration. Callers present a bearer token (personal API token, "
            "OpenID Connect access token or the node's admin token); anonymous callers may "
            "read open-access projects only. Every request is audited."
        ),
    )
    app.state.services = services
    app.router.on_startup.append(settle_heap)
    # Dose columns of large projects are read into memory in the background after a start.
    app.router.on_startup.append(
        lambda: threading.Thread(
            target=services.index.warm_dose_columns, name="warm dose columns", daemon=True
        ).start()
    )
    # Triples still waiting for the background writer are written before a worker exits
    # (what a hard stop leaves is journalled and written at the next start).
    app.router.on_shutdown.append(lambda: services.graphs.flush(timeout_s=10))
    errors.install(app)
    app.include_router(health.router)
    app.include_router(projects.schema_router(app))
    app.include_router(projects.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    app.include_router(consents.router)
    app.include_router(access.router)
    app.include_router(dose.router)
    app.include_router(semantic.router)
    app.include_router(stow.router)
    app.include_router(qido.router)
    app.include_router(wado.router)
    app.include_router(rendered.router)
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_json_bytes)
    # Outermost but for Starlette's error handler: sees every answer, denials included.
    app.add_middleware(AccessLog, services=services)
    return app
