"""How ``serve`` and ``demo`` run uvicorn: its HTTP protocol with bounds on slow and huge
request heads.

uvicorn reads a request's head for as long as the client takes and keeps its URL and headers
whole, however long: one client opening many connections and sending a byte now and then
(slowloris), or a URL of many megabytes, held connections and memory without limit.
:class:`GuardedHttpToolsProtocol` closes a connection whose request head is not complete
within ``HEAD_TIMEOUT_S`` (408), and refuses a URL over ``MAX_URL_BYTES`` (414) or headers over
``MAX_HEADER_BYTES`` (431). Bodies are bounded by :class:`sessionscope.api.limits.BodyLimit`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sessionscope.config import Settings

__all__ = [
    "HEAD_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "GuardedHttpToolsProtocol",
    "uvicorn_options",
]

#: Time a client has to send a request's head (request line and headers), from connecting or
#: from the first byte of a request on a kept-alive connection (``Settings.head_timeout_ms``).
HEAD_TIMEOUT_S = 10.0
MAX_URL_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 200


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for the request head and size bounds."""

    head_timeout_s = HEAD_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None
    _refusal: _Refused | None = None
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(_Refused(408, "the request head took too long"))

    def _refuse(self, refusal: _Refused) -> None:
        body = refusal.message.encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[refusal.status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # A parser callback that raised (a refusal below) ends up here.
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._refuse(refusal)
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refusal = _Refused(414, f"the URL is longer than {MAX_URL_BYTES} bytes")
            raise self._refusal
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            self._refusal = _Refused(
                431, f"the headers are larger than {MAX_HEADER_BYTES} bytes or {MAX_HEADERS}"
            )
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for a server that bounds what clients hold."""
    protocol = type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"head_timeout_s": settings.head_timeout_ms / 1000},
    )
    return {"http": protocol, "timeout_keep_alive": 5}
