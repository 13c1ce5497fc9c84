"""How ``serve`` and ``demo`` run uvicorn: its HTTP protocol with bounds on slow and huge
request heads, on pipelined requests, and on clients whose requests keep being refused.

uvicorn reads a request's head for as long as the client takes and keeps its URL and headers
whole, however long: one client opening many connections and sending a byte now and then
(slowloris), or a URL of many megabytes, held connections and memory without limit.
:class:`GuardedHttpToolsProtocol` closes a connection whose request head is not complete
within ``HEAD_TIMEOUT_S`` (408), and refuses a URL over ``MAX_URL_BYTES`` (414) or headers over
``MAX_HEADER_BYTES`` (431). It also parses every request a client sent ahead of its answers
and queues them all (reading on as each answer's body is read): a client pipelining small
requests back to back filled memory and the event loop. Here reading stays paused while
requests wait, and more than ``guard.MAX_PIPELINED`` waiting close the connection.

With a :class:`~sessionscope.api.guard.ConnectionGuard` (``serve``), it also limits the
connections of an address, answers the 413 of a ``Content-Length`` past the bound and the 429
of an address past its limit of refused bodies itself (no app task), and past the refusal
budget closes the connections of refused clients (see ``api.guard``). Every answer it sends
is in the error shape of the request's API family. Bodies are bounded by
:class:`sessionscope.api.limits.BodyLimit`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from sessionscope.api.errors import ApiError
from sessionscope.api.guard import MAX_PIPELINED, ConnectionGuard, answer
from sessionscope.api.limits import too_large
from sessionscope.config import Settings

__all__ = [
    "HEAD_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "GuardedHttpToolsProtocol",
    "uvicorn_options",
]

log = logging.getLogger("sessionscope.api")

#: Time a client has to send a request's head (request line and headers), from connecting or
#: from the first byte of a request on a kept-alive connection (``Settings.head_timeout_ms``).
HEAD_TIMEOUT_S = 10.0
MAX_URL_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 200


class _Refused(Exception):
    """A request refused by the protocol: ``error`` answered (None: closed unanswered);
    ``held``: after the pause of an address past its limit."""

    def __init__(self, error: ApiError | None, *, held: str | None = None) -> None:
        super().__init__(error.message if error else "closed")
        self.error = error
        self.held = held


class _PipelineFlow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while requests wait on the
    connection (uvicorn resumes it whenever the running request asks for its body), and for
    good once the connection is held (:meth:`hold`)."""

    def __init__(self, transport: asyncio.Transport, pipeline: deque[Any]) -> None:
        super().__init__(transport)
        self._pipeline = pipeline
        self._held = False

    def hold(self) -> None:
        """Stop reading until the connection closes, whatever uvicorn does meanwhile (it
        resumes reading when a request asks for its body or an answer has been sent): a held
        connection read on takes whatever a flooding client sends, a read per packet, only to
        throw it away."""
        self._held = True
        self.pause_reading()

    def resume_reading(self) -> None:
        if not self._pipeline and not self._held:
            super().resume_reading()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for the request head, size bounds, a bound
    on pipelined requests and, with ``guard``, the limits of :mod:`sessionscope.api.guard`."""

    head_timeout_s = HEAD_TIMEOUT_S
    guard: ConnectionGuard | None = None
    flow: _PipelineFlow
    _head_timer: asyncio.TimerHandle | None = None
    _head_began = 0.0
    _in_head = False
    _refusal: _Refused | None = None
    _header_bytes = 0
    #: The request whose app task runs (or ran last).
    _running: RequestResponseCycle | None = None
    #: The client's address when it is not a trusted proxy's (the guard counts it).
    _peer: str | None = None
    _counted = False
    _held: str | None = None
    _hold_timer: asyncio.TimerHandle | None = None
    #: Closes a connection held before it is closed unanswered (``_drop``).
    _closer: asyncio.TimerHandle | None = None
    #: The app writes the access lines (``logs.AccessLines``): uvicorn's own are off, while
    #: the access logger keeps the handler they are written to.
    app_access_log = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app_access_log:
            self.access_log = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _PipelineFlow(transport, self.pipeline)
        guard = self.guard
        if guard is not None and self.client is not None:
            host = self.client[0]
            proxies = self._proxies()
            if proxies is None or host not in proxies:
                self._peer = host
                if not guard.admit(host):
                    self._drop()
                    # uvloop starts reading once this returns, paused or not: a held
                    # connection of a flooding client was read on, a read per packet.
                    self.loop.call_soon(self._pause_held)
                    return
                self._counted = True
        self._in_head = True
        self._head_began = self.loop.time()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
            if self.guard is not None:
                self.guard.release_connection()
        if self._counted and self.guard is not None and self._peer is not None:
            self._counted = False
            self.guard.release(self._peer)
        self._unhold()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closer is not None:  # held before it is closed unanswered: nothing is read
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            # A parser callback that raised (a refusal below) ends up here too.
            refusal, self._refusal = self._refusal, None
            if refusal is None:
                refusal = _Refused(ApiError(400, "bad_request", "the request is not valid HTTP"))
            self._refuse(refusal)
            return
        # A head still incomplete once what arrived is parsed gets its deadline (a timer for
        # such heads only: most arrive whole).
        if self._in_head and self._head_timer is None and not self.transport.is_closing():
            self._arm()

    def _proxies(self) -> Any:
        """uvicorn's trusted proxies (``FORWARDED_ALLOW_IPS``), None when it trusts none."""
        return getattr(self.config.loaded_app, "trusted_hosts", None)

    def _address(self) -> str:
        """The client's address, as the app sees it (``X-Forwarded-For`` of trusted proxies)."""
        if self._peer is not None:
            return self._peer
        host = self.client[0] if self.client else ""
        forwarded = [v for k, v in self.headers if k == b"x-forwarded-for"]
        proxies = self._proxies()
        if forwarded and proxies is not None:
            client, _ = proxies.get_trusted_client_address(b", ".join(forwarded).decode("latin1"))
            return str(client or host)
        return host

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_at(
            self._head_began + self.head_timeout_s, self._head_timeout
        )

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _busy(self) -> bool:
        """Whether an answer is under way or requests wait: the server, not the client, holds
        the connection (and nothing may be written in between)."""
        running = self._running
        return bool(self.pipeline) or (running is not None and not running.response_complete)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._busy():  # reading is paused for the requests before this one: not its time
            self._head_began = self.loop.time()
            self._arm()
            return
        self._refuse(_Refused(ApiError(408, "timeout", "the request head took too long")))

    def _refuse(self, refusal: _Refused) -> None:
        """Answer ``refusal`` and close the connection; close it unanswered when an answer is
        under way (it would be cut into), for a drop, or past the refusal budget."""
        self._disarm()
        if self.transport.is_closing():
            return
        if refusal.error is None or self._busy():
            self._drop()
            return
        guard = self.guard
        if refusal.held is not None and guard is not None and guard.refusals.hold(refusal.held):
            self._held = refusal.held
            self.flow.hold()
            self._hold_timer = self.loop.call_later(
                guard.refusals.hold_s, self._answer, refusal.error
            )
            return
        if guard is not None and not guard.budget.take():
            self._drop()
            return
        self._answer(refusal.error)

    def _answer(self, error: ApiError) -> None:
        self._hold_timer = None
        self._unhold()
        if not self.transport.is_closing():
            try:
                method = self.parser.get_method().decode("latin-1")
            except Exception:  # nothing of the request line yet (a head timeout)
                method = "GET"
            url = getattr(self, "url", b"/")
            self.transport.write(answer(error, method, url, self.headers or []))
            self.transport.close()

    def _unhold(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if self._held is not None and self.guard is not None:
            self.guard.refusals.release(self._held)
            self._held = None

    def _drop(self) -> None:
        """Close the connection unanswered: requests under way or waiting on it get nothing.
        With a guard it is held first (nothing read) for the pause of an address past its
        limit, while ``guard.MAX_HELD`` connections are not held already: a client that opens
        a new connection as soon as one is closed would have the server accept and close
        hundreds a second."""
        for cycle in (self._running, *(c for c, _ in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.pipeline.clear()
        guard = self.guard
        if guard is not None:
            guard.dropped_connections += 1
            if self._closer is None and guard.hold_connection():
                self._closer = self.loop.call_later(guard.refusals.hold_s, self._close_held)
                self.flow.hold()
                return
        self.transport.close()

    def _pause_held(self) -> None:
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def _close_held(self) -> None:
        self._closer = None
        if self.guard is not None:
            self.guard.release_connection()
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._refuse(_Refused(ApiError(400, "bad_request", "the request is not valid HTTP")))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._in_head = True
        self._head_began = self.loop.time()
        self._disarm()  # armed again once what arrived is parsed, if the head is incomplete

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            message = f"the URL is longer than {MAX_URL_BYTES} bytes"
            self._refusal = _Refused(ApiError(414, "uri_too_long", message))
            raise self._refusal
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            message = f"the headers are larger than {MAX_HEADER_BYTES} bytes or {MAX_HEADERS}"
            self._refusal = _Refused(ApiError(431, "headers_too_large", message))
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        refusal = self._screen()
        if refusal is not None:
            self._refusal = refusal
            raise refusal
        super().on_headers_complete()

    def _screen(self) -> _Refused | None:
        """The refusal of a request whose head is complete, before any app task: None to
        serve it."""
        if len(self.pipeline) >= MAX_PIPELINED:
            return _Refused(None)
        guard = self.guard
        if guard is None:
            return None
        address = self._address()
        if guard.drop(address):
            return _Refused(None)
        refusals = guard.refusals
        if guard.declared_too_large(self.headers):
            refusals.note_refused(address)
            return _Refused(too_large(guard.body_limit))
        if refusals.blocked_address(address):
            return _Refused(refusals.too_many(address), held=address)
        return None


def uvicorn_options(
    settings: Settings, guard: ConnectionGuard | None = None, *, app_access_log: bool = False
) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for a server that bounds what clients hold; with
    the app's ``guard`` (``app.state.connection_guard``), the limits of ``api.guard`` too.
    ``app_access_log``: the app writes the access lines (``logs.AccessLines``), not uvicorn."""
    attributes: dict[str, Any] = {"head_timeout_s": settings.head_timeout_ms / 1000}
    if guard is not None:
        attributes["guard"] = guard
    if app_access_log:
        attributes["app_access_log"] = True
    protocol = type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attributes)
    return {"http": protocol, "timeout_keep_alive": 5}
