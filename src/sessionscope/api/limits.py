"""Bounds on what a request may make the server hold: its body, whatever the route.

:class:`BodyLimit` refuses a body past the server-wide bound (413 in the family's error shape)
before a route reads it: at once when ``Content-Length`` says so, or as soon as the bytes
received pass it. Routes that take small bodies read them with :func:`read_body` and a bound
of their own, so no route holds more than its bound in memory.

:class:`RefusedBodies` keeps clients that send such bodies over and over (each refused
cheaply, but hundreds a second still compete with other clients for the event loop and the
cores) from doing it fast: every refused body is answered after a short pause, and past a
limit of refused bodies an address's requests are all answered 429 after a longer one.
:class:`RefusalBudget` bounds the refusals answered a second in all (see ``api.guard`` for
what the HTTP protocol does past it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionscope.api.attempts import FailedAttempts, client_address
from sessionscope.api.errors import ApiError, error_response

__all__ = [
    "HOLD_S",
    "MAX_HELD",
    "MAX_HELD_PER_ADDRESS",
    "PAUSE_S",
    "REFUSED_BODY_STATUSES",
    "BodyLimit",
    "BodyRefusals",
    "RefusalBudget",
    "RefusedBodies",
    "bounded_receive",
    "declared_length",
    "read_body",
    "too_large",
]

#: How long :class:`RefusedBodies` holds a request of an address past its limit before its 429.
HOLD_S = 1.0
#: How long it holds the answer to any refused body (413, 408) before sending it.
PAUSE_S = 0.25
#: Requests held at once, per address and in all: more are answered (429) at once.
MAX_HELD_PER_ADDRESS = 16
MAX_HELD = 512
#: Refusals of a body that count: too large (413), too slow to arrive (408); and the errors of
#: ``errors.BODY_REFUSALS`` (a body that is not JSON or not gzip at all).
REFUSED_BODY_STATUSES = frozenset({408, 413})


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
        refused = declared_too_large(scope, self.max_bytes)
        if refused is not None:
            await refused(scope, receive, send)
            return
        bounded = bounded_receive(receive, self.max_bytes, self.timeout_s)
        await self.app(scope, bounded, send)


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` of request ``headers`` (their first), None without a valid one."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def declared_too_large(scope: Scope, limit: int) -> Response | None:
    """The 413 (closing the connection) of a request whose ``Content-Length`` is past ``limit``
    bytes, in its family's shape; None for any other request."""
    declared = declared_length(scope["headers"])
    if declared is None or declared <= limit:
        return None
    response = error_response(too_large(limit), Request(scope))
    response.headers["Connection"] = "close"
    return response


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
            deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            # asyncio's own timeout: this runs for every request, and anyio's cancel scope
            # costs about twice as much (uvicorn serves on asyncio).
            async with asyncio.timeout_at(deadline):
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


class RefusalBudget:
    r"""Refusals answered a second, in all: a token bucket of ``per_s`` tokens a second
    (holding at most a second's worth, owing at most as much). ``per_s`` 0: no budget.

    A refusal the server may withhold (close the connection instead) is answered only if
    :meth:`take` finds one left; one it answers anyway is :meth:`charge`\ d."""

    def __init__(self, per_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s = per_s
        self._clock = clock
        self._tokens = float(per_s)
        self._at = clock()
        #: Refusals not answered (connections closed instead) since the start.
        self.withheld = 0

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.per_s), self._tokens + (now - self._at) * self.per_s)
        self._at = now
        return self._tokens

    @property
    def exhausted(self) -> bool:
        """Whether no refusal may be answered now."""
        return self.per_s > 0 and self._refill() < 1

    def take(self) -> bool:
        """Spend one refusal if one is left: False (nothing spent) when the budget is
        exhausted, and the refusal is to be withheld."""
        if self.per_s <= 0:
            return True
        if self._refill() < 1:
            self.withheld += 1
            return False
        self._tokens -= 1
        return True

    def charge(self) -> None:
        """Spend one refusal answered anyway (the app's, whose work is done): past the budget
        it runs into debt, down to a second's worth, and stays exhausted until that is paid."""
        if self.per_s > 0:
            self._tokens = max(-float(self.per_s), self._refill() - 1)


class BodyRefusals:
    """Bodies refused (413 too large, 408 too slow, 400 not JSON or not gzip at all) per client
    address, and the pauses that slow down the clients sending them.

    Every answer refusing a body is sent after a pause of ``pause_s`` (:meth:`answered`): a
    client that sends such bodies in a loop, one after another, makes a few a second instead of
    hundreds, from however many addresses. An address with ``refusals.limit`` of them within
    the window gets a 429 with ``Retry-After`` (in the family's shape, the connection closed
    after it) for every request until the window has passed, each after a pause of ``hold_s``
    (:meth:`refuse`). A pause costs a timer; at most ``MAX_HELD_PER_ADDRESS`` answers of an
    address (and ``MAX_HELD`` in all) are held at once, more are sent at once. Other
    addresses' requests are never held."""

    def __init__(
        self,
        refusals: FailedAttempts,
        hold_s: float = HOLD_S,
        pause_s: float = PAUSE_S,
        budget: RefusalBudget | None = None,
    ) -> None:
        self.refusals = refusals
        self.hold_s = hold_s
        self.pause_s = pause_s
        #: Every refusal counted here spends one of it (``api.guard`` reads it).
        self.budget = budget if budget is not None else RefusalBudget(0)
        self._held: dict[str, int] = {}
        self._held_total = 0

    @property
    def enabled(self) -> bool:
        return self.refusals.enabled

    def blocked(self, scope: Scope) -> bool:
        """Whether the request's address is past its limit (:meth:`refuse` answers it)."""
        return self.blocked_address(client_address(scope))

    def blocked_address(self, address: str) -> bool:
        return self.enabled and self.refusals.blocked_s(address) > 0

    def suspect(self, address: str) -> bool:
        """Whether ``address`` had a body refused within the window."""
        return self.enabled and self.refusals.refusals(address) > 0

    async def refuse(self, scope: Scope) -> ApiError:
        """After a pause, the 429 of a request whose address is past its limit."""
        address = client_address(scope)
        await self._hold(address, self.hold_s)
        self.budget.charge()
        return self.too_many(address)

    def too_many(self, address: str) -> ApiError:
        """The 429 of a request of ``address``, past its limit."""
        wait = max(1, self.refusals.blocked_s(address))
        return ApiError(
            429,
            "too_many_refusals",
            "too many requests from this address were refused as too large or too slow: "
            f"try again in {wait} s",
            headers={"Retry-After": str(wait), "Connection": "close"},
        )

    async def answered(self, scope: Scope, status: int) -> None:
        """Count an answer of ``status``; a refused body's (413, 408, or an error of
        ``errors.BODY_REFUSALS``: not JSON, not gzip) is held for the pause first."""
        state = scope.get("state")
        refused = status in REFUSED_BODY_STATUSES or bool(state and state.get("body_refused"))
        if self.enabled and refused:
            address = client_address(scope)
            self.note_refused(address)
            self.budget.charge()
            await self._hold(address, self.pause_s)

    def note_refused(self, address: str) -> None:
        """Count a body of ``address`` refused (toward its limit)."""
        if self.enabled:
            self.refusals.refused(address, None)

    def can_hold(self, address: str) -> bool:
        """Whether an answer to ``address`` may be held (:meth:`hold`)."""
        return self._held.get(address, 0) < MAX_HELD_PER_ADDRESS and self._held_total < MAX_HELD

    def hold(self, address: str) -> bool:
        """Take one of the answers held at once (per address and in all): False when none is
        left. :meth:`release` gives it back."""
        if not self.can_hold(address):
            return False
        self._held[address] = self._held.get(address, 0) + 1
        self._held_total += 1
        return True

    def release(self, address: str) -> None:
        self._held_total -= 1
        left = self._held[address] - 1
        if left:
            self._held[address] = left
        else:
            del self._held[address]

    async def _hold(self, address: str, seconds: float) -> None:
        if not self.hold(address):
            return
        try:
            await anyio.sleep(seconds)
        finally:
            self.release(address)


class RefusedBodies:
    """ASGI middleware: :class:`BodyRefusals` for every request."""

    def __init__(self, app: ASGIApp, refusals: BodyRefusals) -> None:
        self.app = app
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusals = self.refusals
        if scope["type"] != "http" or not refusals.enabled:
            await self.app(scope, receive, send)
            return
        if refusals.blocked(scope):
            err = await refusals.refuse(scope)
            await error_response(err, Request(scope))(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                await refusals.answered(scope, message["status"])
            await send(message)

        await self.app(scope, receive, counted)
