"""Credential guessing: refused credentials counted per client address, and a 429 past a limit.

Every answer of 401, in any API family (a missing, unknown, revoked or badly signed credential,
the admin token, the dashboard's sign-in form), counts against the client's address; so does
a dashboard sign-in link that is not valid. Past ``limit`` refusals within a window of
``window_s`` (counted from the address's first refusal in it), the address's requests that
carry a credential are answered ``429`` with ``Retry-After``, in the family's error shape and
without checking the credential, until the window has passed.

Two exceptions keep well-behaved clients working:

- a credential the address had accepted (while it was not blocked) still works: a collector
  next to a misconfigured one, on one host or behind one NAT, is not stopped. Checking a new
  credential while blocked would tell the guesser which guess was right, so a new one waits
  like any other;
- a request carrying no credential (a page, ``/healthz``) is never refused by this.

Memory is bounded: at most ``MAX_ADDRESSES`` addresses are kept (the least recently refused
or accepted is forgotten first), each with at most ``MAX_KNOWN`` accepted credentials, kept as
a keyed hash (never the credential). The work is a dictionary look-up per request, and one
hash of the request's credential headers when its address is remembered or its credential
was accepted or refused.

:class:`AttemptLimit` (ASGI middleware) does this for every credential sent in a header or in
the ``key``/``apiKey`` query parameter, and the ingest hot path (``api.hotpath``) the same with
:func:`gate` and :func:`note`; the dashboard's sign-in form and links, whose credentials ride
in the body or URL of the sign-in route, ask :class:`FailedAttempts` directly.

A limit per key id or email is left out on purpose: every secret is random (192 bits or more),
so guessing one from many addresses is hopeless, and such a limit would let anyone lock a
key's owner out.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionscope.api.errors import ApiError, error_response

__all__ = [
    "MAX_ADDRESSES",
    "MAX_KNOWN",
    "AttemptLimit",
    "FailedAttempts",
    "client_address",
    "credential_of",
    "gate",
    "note",
    "too_many_attempts",
]

log = logging.getLogger("sessionscope.api")

#: Client addresses remembered at most (about 200 bytes each).
MAX_ADDRESSES = 10_000
#: Accepted credentials remembered per address at most.
MAX_KNOWN = 16

#: Request headers that carry a credential in some API family (ASGI names are lower case):
#: native, ThousandEyes and admin ``Authorization``; NAVER VPE ``x-api-key``; Ekran ``ApiKey``;
#: Live Station's access key (its signature changes with every request).
_CREDENTIAL_HEADERS = frozenset(
    {b"authorization", b"x-api-key", b"apikey", b"x-ncp-iam-access-key"}
)
#: Query parameters that carry one: native ingest from browsers, Live Station callbacks.
_CREDENTIAL_PARAMS = frozenset({"key", "apiKey"})


@dataclass(slots=True)
class _Address:
    window_start: float
    refused: int = 0
    #: Fingerprints of credentials accepted from the address, oldest first.
    known: dict[int, None] = field(default_factory=dict)


class FailedAttempts:
    """Refused credentials per client address within a window; see the module docstring.

    ``limit`` 0 turns the limit off; ``what`` names the refusals in the log line of an
    address reaching it. ``clock`` is for tests (monotonic seconds)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        what: str = "credentials",
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self.max_addresses = max_addresses
        self._clock = clock
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def __len__(self) -> int:
        return len(self._addresses)

    def tracked(self, address: str) -> bool:
        """Whether ``address`` is remembered (it had a credential refused or accepted)."""
        return address in self._addresses

    def blocked_s(self, address: str) -> int:
        """Seconds left until ``address``'s window (past its limit) ends; 0: not past it."""
        entry = self._addresses.get(address)
        if entry is None or entry.refused < self.limit or not self.enabled:
            return 0
        left = entry.window_start + self.window_s - self._clock()
        return max(1, math.ceil(left)) if left > 0 else 0

    def refusals(self, address: str) -> int:
        """Refusals of ``address`` within its current window (0 once the window has passed)."""
        entry = self._addresses.get(address)
        if entry is None or self._clock() - entry.window_start >= self.window_s:
            return 0
        return entry.refused

    def wait_s(self, address: str, credential: int | None) -> int:
        """Seconds ``address`` must wait before ``credential`` is checked; 0: check it now."""
        if credential is None:
            return 0
        entry = self._addresses.get(address)
        if entry is None or credential in entry.known:
            return 0
        return self.blocked_s(address)

    def _entry(self, address: str, now: float) -> _Address:
        entry = self._addresses.get(address)
        if entry is None:
            if len(self._addresses) >= self.max_addresses:
                self._addresses.popitem(last=False)
            entry = self._addresses[address] = _Address(now)
        else:
            self._addresses.move_to_end(address)
        return entry

    def refused(self, address: str, credential: int | None) -> None:
        """Count a refused credential against ``address``."""
        if not self.enabled:
            return
        now = self._clock()
        entry = self._entry(address, now)
        if entry.refused == 0 or now - entry.window_start >= self.window_s:
            entry.window_start, entry.refused = now, 0
        entry.refused += 1
        if credential is not None:
            entry.known.pop(credential, None)  # refused now: no longer a known good one
        if entry.refused == self.limit:
            log.warning(
                "too many refused %s from %s: %d within %g s; refusing it (429) for %d s",
                self.what,
                address,
                entry.refused,
                self.window_s,
                math.ceil(entry.window_start + self.window_s - now),
            )

    def accepted(self, address: str, credential: int | None) -> None:
        """Remember that ``address`` had ``credential`` accepted."""
        if not self.enabled or credential is None:
            return
        entry = self._addresses.get(address)
        if entry is not None and credential in entry.known:
            return
        entry = self._entry(address, self._clock())
        if len(entry.known) >= MAX_KNOWN:
            del entry.known[next(iter(entry.known))]
        entry.known[credential] = None


def client_address(scope: Scope) -> str:
    """The client's address (uvicorn sets it from ``X-Forwarded-For`` for trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def credential_of(scope: Scope) -> int | None:
    """A keyed hash of the credentials a request carries in headers or the query; None when it
    carries none. Python's hash of bytes is keyed per process (SipHash)."""
    parts: list[bytes] = [v for k, v in scope["headers"] if k in _CREDENTIAL_HEADERS]
    query: bytes = scope.get("query_string", b"")
    if b"key=" in query or b"Key=" in query:
        parts += [
            v.encode()
            for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            if k in _CREDENTIAL_PARAMS
        ]
    return hash(tuple(parts)) if parts else None


def too_many_attempts(wait_s: int) -> ApiError:
    """The 429 of an address past its limit of refused credentials."""
    return ApiError(
        429,
        "too_many_attempts",
        f"too many refused credentials from this address: try again in {wait_s} s",
        headers={"Retry-After": str(wait_s)},
    )


def gate(attempts: FailedAttempts, scope: Scope) -> tuple[int, int | None]:
    """``(wait_s, credential)`` of a request: the seconds it must wait (0: check it now) and
    its credential's hash when it was needed (None otherwise, or when it carries none)."""
    address = client_address(scope)
    if not attempts.enabled or not attempts.tracked(address):
        return 0, None
    credential = credential_of(scope)
    return attempts.wait_s(address, credential), credential


def note(attempts: FailedAttempts, scope: Scope, status: int, credential: int | None) -> None:
    """Count a request's answer: a 401 refused its credential; an answer to a request whose
    credential a family accepted (``metrics.note_project``) remembers it."""
    if not attempts.enabled:
        return
    if status == 401:
        attempts.refused(client_address(scope), credential or credential_of(scope))
    elif _accepted(scope):
        attempts.accepted(client_address(scope), credential or credential_of(scope))


class AttemptLimit:
    """ASGI middleware: count every 401 against the client's address, and answer 429 (unchecked)
    to the address's new credentials once it is past the limit (:func:`gate`, :func:`note`)."""

    def __init__(self, app: ASGIApp, attempts: FailedAttempts) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        attempts = self.attempts
        if scope["type"] != "http" or not attempts.enabled:
            await self.app(scope, receive, send)
            return
        wait, credential = gate(attempts, scope)
        if wait:
            response = error_response(too_many_attempts(wait), Request(scope))
            await response(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                note(attempts, scope, message["status"], credential)
            await send(message)

        await self.app(scope, receive, counted)


def _accepted(scope: Scope) -> bool:
    """Whether a family accepted the request's credential (``metrics.note_project``, the
    admin API's token check)."""
    state = scope.get("state")
    return state is not None and bool(state.get("credential_accepted"))
