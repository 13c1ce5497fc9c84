"""The ingest hot path: ``POST /api/v1/events`` answered in front of the middleware stack.

Players and agents send one event or a handful at a time, so this one route's cost per request
is what a deployment lives on. On the 2-core reference machine uvicorn answers about 13,000
requests/s with a bare ASGI app and about 3,000 with an empty FastAPI route behind the same
server: the middleware layers, routing and exception wrappers cost more per request than
acknowledging a single event does (see docs/performance.md). So :class:`IngestHotPath` sits
outermost and serves this route itself, doing inline what the layers it skips would do:

- the body bounds of :class:`~sessionscope.api.limits.BodyLimit` (413, 408), and the pauses
  and 429s of :class:`~sessionscope.api.limits.RefusedBodies` for clients whose bodies keep
  being refused;
- the limit on refused credentials of :class:`~sessionscope.api.attempts.AttemptLimit` (429);
- the CORS answer headers of :class:`~sessionscope.api.cors.CrossOrigin` (its preflights still
  go through the stack: they are ``OPTIONS``);
- the security headers of :class:`~sessionscope.api.headers.SecurityHeaders`;
- the counting and JSON request log of :class:`~sessionscope.api.metrics.RequestMetrics`;
- errors through the app's own exception handlers (the family's error shape, the log of refused
  credentials, 503 on store faults).

A client that leaves before its body has arrived is counted with status 499 (nginx's "client
closed request") and not answered; it is not an error of the server, so nothing is logged.
Everything else is the documented route's own code (:func:`sessionscope.api.native.ingest_events`,
:func:`sessionscope.api.auth.ingest_project`); read-after-write never applies to ingest. Every
other request goes down the stack unchanged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionscope.api.attempts import gate, note, too_many_attempts
from sessionscope.api.auth import ingest_project
from sessionscope.api.cors import CORS_ANSWER_HEADERS
from sessionscope.api.headers import SECURITY_HEADERS
from sessionscope.api.limits import bounded_receive, declared_too_large
from sessionscope.api.metrics import RequestRecorder
from sessionscope.api.native import ingest_events

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["INGEST_PATH", "IngestHotPath"]

INGEST_PATH = "/api/v1/events"

_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]
_CORS = [(name.lower().encode(), value.encode()) for name, value in CORS_ANSWER_HEADERS]


class IngestHotPath:
    """ASGI: serve ``POST /api/v1/events`` of ``owner`` directly; pass everything else to
    ``app`` (``owner``'s middleware stack)."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner
        #: ``metrics.install`` ran before the stack is built (``create_app``).
        self.recorder: RequestRecorder | None = getattr(owner.state, "request_recorder", None)

    def serves(self, scope: Scope) -> bool:
        """Whether ``scope`` is a request this serves itself."""
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and _route_path(scope) == INGEST_PATH
            and getattr(self.owner.state, "ctx", None) is not None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.serves(scope):
            await self.serve(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``POST /api/v1/events``."""
        start = time.perf_counter()
        ctx = self.owner.state.ctx
        limit = ctx.settings.max_request_bytes
        request = Request(scope, bounded_receive(receive, limit, ctx.settings.body_timeout_s))
        status = 500
        wait, credential = gate(ctx.attempts, scope)
        try:
            try:
                if ctx.body_refusals.blocked(scope):
                    response: Response = await self._handle(
                        request, await ctx.body_refusals.refuse(scope)
                    )
                elif wait:
                    response = await self._handle(request, too_many_attempts(wait))
                elif (oversize := declared_too_large(scope, limit)) is not None:
                    response = oversize
                else:
                    response = await ingest_events(request, await ingest_project(request, ctx), ctx)
            except ClientDisconnect:
                status = 499  # the client left before its body arrived: nobody to answer
                return
            except Exception as exc:
                response = await self._handle(request, exc)
            status = response.status_code
            note(ctx.attempts, scope, status, credential)
            await ctx.body_refusals.answered(scope, status)  # a refused body's: after a pause
            _add_headers(response, cross_origin="origin" in request.headers)
            await response(scope, receive, send)
        finally:
            if self.recorder is not None:
                self.recorder.record(scope, INGEST_PATH, status, time.perf_counter() - start)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        """``exc`` answered by the app's exception handler for its class (as the stack would)."""
        handlers = self.owner.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                if cls is Exception and self.recorder is not None:  # unexpected: counted
                    self.recorder.errors.inc()
                response = await handler(request, exc)  # type: ignore[misc]
                assert isinstance(response, Response)
                return response
        raise exc


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _add_headers(response: Response, *, cross_origin: bool) -> None:
    raw = response.raw_headers
    present = {name for name, _ in raw}
    raw.extend(h for h in _SECURITY if h[0] not in present)
    if cross_origin:
        raw.extend(_CORS)
