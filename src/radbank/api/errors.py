"""Error responses: client mistakes get 4xx with a reason; only real faults are 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from radbank.dicom.query import QueryError

log = logging.getLogger("radbank.api")


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": exc.detail, "status": exc.status_code},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return JSONResponse(
            {"error": "invalid request: " + "; ".join(problems), "status": 400}, status_code=400
        )

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "status": 400}, status_code=400)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected fault on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "internal error; the server log has the details", "status": 500},
            status_code=500,
        )
