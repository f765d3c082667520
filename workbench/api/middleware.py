"""ASGI middleware of the API: body-size caps and a last guard against unexpected errors.

Both are plain ASGI so they work whether the API runs alone or shares its app with the UI.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from workbench.api.errors import error_body

log = logging.getLogger("workbench.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps(error_body(status, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse with 413 a request body over ``limit_for(path)`` bytes (None: no cap).

    The declared Content-Length is checked first (the server holds a body to its declared
    length); a body without one (chunked) is read up to the cap and replayed.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                return await self._refuse(scope, send, int(declared), limit)
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > limit:
                return await self._refuse(scope, send, len(body), limit)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later reads wait for the disconnect, as usual

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, size: int, limit: int) -> None:
        message = (f"The request body is {size:,} bytes or more; this endpoint accepts at most "
                   f"{limit:,} bytes.")
        log.warning("refused %s %s: 413 %s", scope.get("method"), scope.get("path"), message)
        await send_error(send, 413, message)


class CatchAll:
    """An unexpected exception becomes a 500 envelope for the client (never a traceback page)
    and one log entry with its traceback for whoever runs the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the edge: anything else escaping is a bug, logged once
            # With its traceback: refusals (WorkbenchError) never get here, they are one line
            # each (errors.refuse); what does get here is a fault someone has to find.
            log.error("internal error on %s %s: %s: %s", scope.get("method"), scope.get("path"),
                      type(exc).__name__, exc, exc_info=exc)
            if not started:
                await send_error(send, 500, "Internal server error; the server log has the details.")
