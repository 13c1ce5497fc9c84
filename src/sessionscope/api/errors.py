"""Errors of the HTTP layer, and how each API family shapes them.

Exception hierarchy::

    ApiError                 an answer with a status, a code and a message (never a 5xx by choice)

Every family (native, and each vendor in ``compat/``) registers a formatter for its path prefix
with :func:`register_error_shape`; :func:`install_error_handlers` makes every error raised in a
route (ours, FastAPI's parameter validation, unknown routes) come out in its family's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "BODY_REFUSALS",
    "ApiError",
    "ErrorFormatter",
    "error_response",
    "install_error_handlers",
    "register_error_shape",
]

log = logging.getLogger("sessionscope.api")


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, human ``message`` naming the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        problems: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = list(problems)
        self.headers = headers or {}


ErrorFormatter = Callable[[ApiError, Request], Response]

#: Error codes that refuse a request's body itself: too large, too slow to arrive, not JSON
#: (or nested too deeply) or not gzip at all. Not a batch with invalid events.
BODY_REFUSALS = frozenset({"too_large", "timeout", "invalid_json", "bad_gzip"})


def native_error(err: ApiError, request: Request) -> Response:
    body: dict[str, Any] = {"error": {"code": err.code, "message": err.message}}
    if err.problems:
        body["error"]["problems"] = err.problems
    return JSONResponse(body, status_code=err.status, headers=err.headers)


_SHAPES: list[tuple[str, ErrorFormatter]] = []


def register_error_shape(prefix: str, formatter: ErrorFormatter) -> None:
    """Shape errors of routes under ``prefix`` with ``formatter`` (longest prefix wins)."""
    _SHAPES[:] = [(p, f) for p, f in _SHAPES if p != prefix]
    _SHAPES.append((prefix, formatter))
    _SHAPES.sort(key=lambda pf: len(pf[0]), reverse=True)


def _formatter(path: str) -> ErrorFormatter:
    for prefix, formatter in _SHAPES:
        if path.startswith(prefix):
            return formatter
    return native_error


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if not errors:
        return "request", "is invalid"
    first = errors[0]
    loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "path", "header", "body")]
    name = ".".join(loc) or "request"
    msg = str(first.get("msg", "is invalid"))
    return name, msg


def error_response(err: ApiError, request: Request) -> Response:
    """``err`` in the error shape of the API family ``request`` belongs to."""
    return _formatter(request.url.path)(err, request)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.code in BODY_REFUSALS:  # counted per client address (``limits.BodyRefusals``)
            request.state.body_refused = True
        if exc.status in (401, 403):  # credential guessing shows in the log (never a secret)
            client = request.client.host if request.client else "-"
            log.warning(
                "refused %s %s from %s: %s %s",
                request.method,
                request.url.path[:200],
                client,
                exc.status,
                exc.message[:200],
            )
        return _formatter(request.url.path)(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        name, msg = _validation_message(exc)
        err = ApiError(400, "bad_request", f"parameter {name}: {msg}")
        return _formatter(request.url.path)(err, request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        err = ApiError(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))
        return _formatter(request.url.path)(err, request)

    async def on_crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClickHouseError):  # the store is unreachable, or failed mid-query
            log.error("store error on %s %s: %s", request.method, request.url.path, str(exc)[:500])
            err = ApiError(
                503,
                "store_unavailable",
                "the store is unavailable; try again shortly",
                headers={"Retry-After": "5"},
            )
            return _formatter(request.url.path)(err, request)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = ApiError(500, "internal", "internal error; the server log has the details")
        return _formatter(request.url.path)(err, request)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
