"""Bounds on what a request may make the server hold: its body, whatever the route.

:class:`BodyLimit` refuses a body past the server-wide bound (413 in the family's error shape)
before a route reads it: at once when ``Content-Length`` says so, or as soon as the bytes
received pass it. Routes that take small bodies read them with :func:`read_body` and a bound
of their own, so no route holds more than its bound in memory.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionscope.api.errors import ApiError, error_response

__all__ = ["BodyLimit", "bounded_receive", "read_body", "too_large"]


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: no request body larger than ``max_bytes`` reaches a route, and none
    that takes longer than ``timeout_s`` to arrive (a body trickling in, byte by byte, would
    hold its request as long as the client likes): 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 120.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(too_large(limit), Request(scope))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        bounded = bounded_receive(receive, limit, self.timeout_s)
        await self.app(scope, bounded, send)


def bounded_receive(receive: Receive, limit: int, timeout_s: float) -> Receive:
    """``receive``, refusing (as :class:`ApiError`) a body past ``limit`` bytes (413) or one
    still arriving ``timeout_s`` after it was first asked for (408)."""
    received = 0
    complete = False
    deadline: float | None = None

    async def bounded() -> Message:
        nonlocal received, complete, deadline
        if complete:  # after the body: waiting for a disconnect is not bounded
            return await receive()
        if deadline is None:
            deadline = anyio.current_time() + timeout_s
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
        except TimeoutError:
            raise ApiError(
                408, "timeout", f"the body did not arrive within {timeout_s:g} s"
            ) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
            complete = not message.get("more_body", False)
        else:
            complete = True
        return message

    return bounded


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 (as :class:`ApiError`) past ``limit`` bytes
    without reading further."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
