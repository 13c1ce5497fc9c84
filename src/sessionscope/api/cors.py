"""Cross-origin access for browsers: the native ingest route and the browser SDK only.

A page on another origin (a video site, a web app) posts its events to ``/api/v1/events`` and
loads ``/sdk/sessionscope.js`` (as a module too, which needs CORS). Nothing else is opened to
other origins: every read keeps the browser's same-origin rule. The answer's
``Access-Control-Allow-Origin`` is ``*`` and credentials are never allowed: no cookie ever
authenticates these routes, the API key travels in the request (``Authorization: Bearer`` or,
on ingest only, a ``key`` query parameter, since ``navigator.sendBeacon`` cannot set a header).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORS_ANSWER_HEADERS", "CORS_PREFIXES", "CORS_ROUTES", "CrossOrigin"]

#: Exact paths open to other origins, with the methods allowed from there.
CORS_ROUTES: dict[str, tuple[str, ...]] = {"/api/v1/events": ("POST",)}
#: Path prefixes of public static files (GET) open to other origins.
CORS_PREFIXES: tuple[str, ...] = ("/sdk/",)
#: On every answer of those routes to a request from another origin.
CORS_ANSWER_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Retry-After"),
)
_ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding"
_MAX_AGE = "86400"


def _methods(path: str) -> tuple[str, ...]:
    if path in CORS_ROUTES:
        return CORS_ROUTES[path]
    if path.startswith(CORS_PREFIXES):
        return ("GET", "HEAD")
    return ()


class CrossOrigin:
    """ASGI middleware: answer preflights and add the CORS headers on the routes above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods = _methods(scope.get("path", ""))
        headers = Headers(scope=scope)
        if not methods or "origin" not in headers:
            await self.app(scope, receive, send)
            return
        asked = headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and asked is not None:
            ok = asked.upper() in methods
            response = Response(
                status_code=204 if ok else 405,
                headers={
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": ", ".join(methods),
                    "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                    "Access-Control-Max-Age": _MAX_AGE,
                },
            )
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in CORS_ANSWER_HEADERS:
                    out[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)
