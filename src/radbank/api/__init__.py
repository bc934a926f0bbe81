"""HTTP interface: thin FastAPI routers over the node's services, one file per service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from radbank import __version__
from radbank.api import errors, health, projects, qido, stow, wado

if TYPE_CHECKING:  # radbank.app imports this package
    from radbank.app import Services

__all__ = ["build_api"]


def build_api(services: Services) -> FastAPI:
    # No anonymous endpoints but /healthz: the schema is served to token holders only.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        title="radbank",
        version=__version__,
        description=(
            "A node of a network of research repositories of de-identified medical images "
            "and radiation dose data. DICOMweb (STOW-RS, QIDO-RS, WADO-RS) per project, "
            "REST administration. Every endpoint but /healthz needs a bearer token."
        ),
    )
    app.state.services = services
    errors.install(app)
    app.include_router(health.router)
    app.include_router(projects.schema_router(app))
    app.include_router(projects.router)
    app.include_router(stow.router)
    app.include_router(qido.router)
    app.include_router(wado.router)
    return app
