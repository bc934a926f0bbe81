"""Bodies of REST requests are bounded before anything reads them: a caller, signed in or
not (sign-in itself takes a JSON body), cannot make the node buffer an unbounded body.

STOW-RS (streamed, bounded by max_request_bytes and max_instance_bytes) and the consent
CSV import and non-DICOM submissions (bounded by their own routes) are left to their routes; every other request body
may have at most max_json_bytes. A declared Content-Length over the bound is refused at
once with 413; a chunked body is counted as it arrives and refused when it passes it.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STREAMED = re.compile(
    r"^/dicom-web/projects/[^/]+/studies(/[^/]+)?$|^/api/projects/[^/]+/consents/import$"
    r"|^/api/projects/[^/]+/submissions$"
)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            scope["method"] == "POST" and _STREAMED.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await _refuse(send, 413, self._too_large())
                return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await _refuse(send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
