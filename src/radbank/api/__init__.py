"""HTTP interface: thin FastAPI routers over the node's services, one file per service."""

from __future__ import annotations

import gc
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
    semantic,
    stow,
    users,
    wado,
)
from radbank.api.access_log import AccessLog
from radbank.api.limits import BodyLimit

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
    app.router.on_startup.append(_settle_heap)
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
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_json_bytes)
    # Outermost but for Starlette's error handler: sees every answer, denials included.
    app.add_middleware(AccessLog, services=services)
    return app


# Container objects allocated (less those freed) between two young collections: 700 by
# default. Ingest makes many per instance (a data set's elements, SQL statements), nearly
# all freed by reference counting: the cyclic garbage is ~5 small objects per instance
# (SQL bind parameters), never a buffer. At 700 a young collection ran every 2-3
# instances, each moving the live data sets of the batch in flight into the older
# generations, to be walked again there (an older collection every 30 instances).
# STOW-RS with 2 clients, 4 A/B pairs: 478 -> 521 instances/s, worker CPU -8 %.
_GC_THRESHOLDS = (50_000, 10, 10)


def _settle_heap() -> None:
    """Move what the start made (modules, the app, its routes and models: most of the heap)
    out of the cyclic garbage collector's way. Every full collection would walk all of it
    again, and ingest allocates enough to trigger one every few hundred objects stored:
    7 % of a worker's CPU went there."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
