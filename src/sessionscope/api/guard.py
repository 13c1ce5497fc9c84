"""What the HTTP protocol (``api.server``) decides about clients before the app sees a request.

A client that does not wait for its answers (many connections at once, requests pipelined
back to back) is not slowed down by pauses: the app refused its bodies as fast as it sent
them, and the event loop spent its time parsing, queueing and answering them. So the protocol,
for every connection and request, asks :class:`ConnectionGuard`:

- **connections per address**: past ``Settings.max_connections_per_address`` connections open
  at once from one address, a new one is refused as it is accepted (nothing read, nothing
  answered). Trusted proxies (uvicorn's ``FORWARDED_ALLOW_IPS``) carry many clients and are
  not limited;
- **the refusal budget** (``limits.RefusalBudget``, ``Settings.refusal_budget_per_s``): every
  refusal answered (a body refused by the app, a refused head, a 429 of an address past its
  limit) spends one, and so does every request of an address that had a body refused within
  the window (it is likely refused again). With none left, such requests (and new
  connections of such addresses) are closed without being read or answered (but an address
  past its limit is still paused and answered 429, as long as answers may be held), and
  refusals the protocol would answer are not: the connection is closed instead. Requests of
  other addresses are served as always;
- the 413 of a ``Content-Length`` past the bound, and the 429 (after the pause) of an address
  past its limit of refused bodies, are answered by the protocol itself, in the family's
  error shape (:func:`answer`), without starting the app.

A connection closed unanswered is held first, unread, for the pause of an address past its
limit (``MAX_HELD`` of them at most): a client that opens a new connection as soon as one is
closed would otherwise have the server accept and close hundreds a second. Memory is bounded:
one counter per address with a connection open. ``/metrics`` counts what was refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import httptools
from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from sessionscope.api.errors import ApiError, error_response
from sessionscope.api.headers import SECURITY_HEADERS
from sessionscope.api.limits import MAX_HELD, BodyRefusals, RefusalBudget, declared_length
from sessionscope.config import Settings

__all__ = ["MAX_PIPELINED", "ConnectionGuard", "answer"]

#: Requests a client may send ahead of its answers on one connection (HTTP/1.1 pipelining:
#: browsers never do, some agents a few). Past it the connection is closed.
MAX_PIPELINED = 16

_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]


class ConnectionGuard:
    """Shared by the connections of one server: open connections per address, the app's
    refused bodies (:class:`~sessionscope.api.limits.BodyRefusals`) and the refusal budget."""

    def __init__(self, settings: Settings, refusals: BodyRefusals) -> None:
        self.refusals = refusals
        self.budget: RefusalBudget = refusals.budget
        self.max_per_address = settings.max_connections_per_address
        #: The bound of any body (as ``limits.BodyLimit``).
        self.body_limit = settings.max_request_bytes
        self._open: dict[str, int] = {}
        self._held_connections = 0
        #: Connections refused as they were accepted, and connections closed unanswered
        #: (those among them too), since the start (``/metrics``).
        self.refused_connections = 0
        self.dropped_connections = 0

    def open_connections(self, address: str) -> int:
        return self._open.get(address, 0)

    def admit(self, address: str) -> bool:
        """Count a new connection of ``address``; False (not counted: close it) past the limit
        of connections, or while the budget is spent and the address was refused lately."""
        held = self._open.get(address, 0)
        if (self.max_per_address and held >= self.max_per_address) or (
            self.budget.exhausted and self._refused_lately(address)
        ):
            self.refused_connections += 1
            return False
        self._open[address] = held + 1
        return True

    def release(self, address: str) -> None:
        """A connection :meth:`admit` counted has closed."""
        left = self._open.get(address, 0) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)

    def hold_connection(self) -> bool:
        """Take one of the ``MAX_HELD`` connections held before they are closed unanswered:
        False when none is left (close it at once). :meth:`release_connection` gives it back."""
        if self._held_connections >= MAX_HELD:
            return False
        self._held_connections += 1
        return True

    def release_connection(self) -> None:
        self._held_connections -= 1

    def drop(self, address: str) -> bool:
        """Whether a request of ``address`` is closed unread: the address had a body refused
        within the window, and no refusal is left in the budget for it (it takes one: such a
        request is likely refused again, and the app's work on it is what the budget bounds).
        An address past its limit is paused and answered 429 instead while it has answers
        left to hold: that costs a timer, and keeps a client that waits for answers waiting."""
        if self.budget.per_s <= 0 or not self._refused_lately(address):
            return False
        return not self.budget.take()

    def _refused_lately(self, address: str) -> bool:
        refusals = self.refusals
        if not refusals.suspect(address):
            return False
        return not (refusals.blocked_address(address) and refusals.can_hold(address))

    def declared_too_large(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        declared = declared_length(headers)
        return declared is not None and declared > self.body_limit


def answer(err: ApiError, method: str, url: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The bytes of ``err`` answered to a request of ``method`` and ``url`` (what arrived of
    it), in the error shape of the URL's API family, closing the connection."""
    try:
        parsed = httptools.parse_url(url)
        raw_path: bytes = parsed.path or b"/"
        query: bytes = parsed.query or b""
    except httptools.HttpParserInvalidURLError:
        raw_path, query = b"/", b""
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "root_path": "",
        "scheme": "http",
        "server": None,
        "client": None,
        "http_version": "1.1",
        "state": {},
    }
    response = error_response(err, Request(scope))
    raw = [(k, v) for k, v in response.raw_headers if k != b"connection"]
    present = {k for k, _ in raw}
    raw += [h for h in _SECURITY if h[0] not in present]
    raw.append((b"connection", b"close"))
    lines = [STATUS_LINE[err.status], *(k + b": " + v + b"\r\n" for k, v in raw), b"\r\n"]
    if method != "HEAD":
        lines.append(bytes(response.body))
    return b"".join(lines)
