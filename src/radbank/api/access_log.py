"""Every HTTP request goes into the audit trail before any of its answer leaves the node.

A pure ASGI middleware: when the application starts its response, the record (who, which
route, which project and object UIDs, the query, from where, with which token, the status
as outcome) is appended to the hash-chained trail, and only then is the response sent;
where the record cannot be written (a full disk), the answer is withheld and 503 sent
instead. A request that crashes is recorded as a failure. Denied requests (401, 403) are recorded as
denied: probing is visible to the auditor. Only /healthz, which touches no data, is left out.

Secrets never reach the record: the Authorization header is not read here, and a personal
token appears by its public id only.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radbank.governance.audit import Outcome
from radbank.governance.policy import ANONYMOUS, Principal
from radbank.index import out_of_space

if TYPE_CHECKING:
    from radbank.app import Services

log = logging.getLogger(__name__)

_UNAUDITED = frozenset({"/healthz"})
_MAX_QUERY_CHARS = 2000
_UID_PARAMS = (
    ("study", "StudyInstanceUID"),
    ("series", "SeriesInstanceUID"),
    ("sop", "SOPInstanceUID"),
)


class AccessLog:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNAUDITED:
            await self.app(scope, receive, send)
            return
        recorded = False
        withheld = False

        async def audited_send(message: Message) -> None:
            nonlocal recorded, withheld
            if withheld:
                return  # the application's answer is not sent: nothing of it leaves
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                try:
                    await run_in_threadpool(self._record, scope, message["status"])
                except Exception as exc:  # noqa: BLE001 - the answer is withheld, said why
                    log.exception(
                        "audit: %s %s could not be recorded", scope["method"], scope["path"]
                    )
                    withheld = True
                    await _unrecorded(send, exc)
                    return
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not recorded:
                recorded = True
                await run_in_threadpool(self._record, scope, 500)
            raise

    def _record(self, scope: Scope, status: int) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        caller: Principal = state.get("principal", ANONYMOUS)
        route = scope.get("route")
        params: dict[str, Any] = scope.get("path_params") or {}
        project = params.get("project")
        area = "dicomweb" if scope["path"].startswith("/dicom-web/") else "api"
        action = f"{area}.{route.name}" if route is not None else "http.unmatched"
        detail: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"][:1000],
            "status": status,
        }
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            detail["query"] = query[:_MAX_QUERY_CHARS]
        uids = {keyword: str(params[name])[:64] for name, keyword in _UID_PARAMS if name in params}
        if uids:
            detail["uids"] = uids
        if state.get("token_id"):
            detail["token"] = state["token_id"]
        if caller.via:
            detail["via"] = caller.via
        if project and project in caller.grants:
            detail["grant"] = caller.grants[project]
        client = scope.get("client")
        self.services.trail.record(
            action,
            actor=caller.name,
            resource=f"project:{project}" if project else "node",
            project=str(project)[:200] if project else None,
            detail=detail,
            source=client[0] if client else "",
            outcome=_outcome(status),
        )


async def _unrecorded(send: Send, exc: Exception) -> None:
    """Answer 503 instead of what the application answered: no answer leaves unrecorded."""
    cause = "no space left" if out_of_space(exc) else type(exc).__name__
    body = json.dumps(
        {
            "error": f"the node cannot record this request in its audit trail ({cause}), so "
            "it withholds the answer; try again later (an upload sent again is "
            "acknowledged without being stored twice)",
            "status": 503,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"60"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _outcome(status: int) -> str:
    if status < 400:
        return Outcome.SUCCESS
    if status in (401, 403):
        return Outcome.DENIED
    return Outcome.FAILURE
