"""Read-after-write: a request that reads waits until every event acknowledged before it
arrived is in the store.

Events are acknowledged from the ingest journal and loaded into the store behind it (see
:mod:`sessionscope.ingest.ingestor`), so without this a read right after an ingest could miss
what was just acknowledged. Every request waits for the loader except those that only write
events (native ingest, receivers) or read nothing stored (liveness, OpenAPI, static files).
When nothing waits in the journal this costs one comparison; otherwise the loader is asked to
write at once. A read that waits longer than ``read_wait_s`` is answered 503 with
Retry-After, in its API family's error shape.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionscope.api.errors import ApiError, error_response

__all__ = ["INGEST_ROUTES", "ReadAfterWrite"]

#: ``(method, path)`` of the routes that only write events (they never wait).
INGEST_ROUTES: set[tuple[str, str]] = {("POST", "/api/v1/events")}

_NEVER_WAIT_PREFIXES = (
    "/static/",
    "/sdk/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/favicon",
)


class ReadAfterWrite:
    """ASGI middleware: wait for the ingest loader before every request that may read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _may_read(scope) and not await _caught_up(scope):
            err = ApiError(
                503,
                "loading",
                "events acknowledged before this request are still being loaded; retry shortly",
                headers={"Retry-After": "2"},
            )
            await error_response(err, Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _caught_up(scope: Scope) -> bool:
    """Wait (in a worker thread) for the loader to pass what was acknowledged; False when
    that took longer than the ingestor's read wait."""
    ingestor = getattr(getattr(scope["app"].state, "ctx", None), "ingestor", None)
    if ingestor is None or ingestor.caught_up():
        return True
    return bool(await to_thread.run_sync(ingestor.barrier))


def _may_read(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if (scope.get("method", ""), path) in INGEST_ROUTES:
        return False
    return not path.startswith(_NEVER_WAIT_PREFIXES)
