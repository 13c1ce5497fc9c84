"""A Python client for a sessionscope server's native API (httpx; sync and async).

::

    from sessionscope.client import Client

    with Client("http://127.0.0.1:8000", api_key) as ss:
        ss.send(events)  # batches of 1,000; a retry resends the same events
        for session in ss.sessions("player", start="2025-10-10", end="2025-10-11"):
            ...
        ss.session("player", "s-1")  # with its metrics and events
        ss.timeseries("player", "viewers", start="2025-10-10", interval="1h")

:class:`AsyncClient` has the same methods, to ``await`` (and ``async for`` over sessions).

Sending is safe to retry: the server stores an event id once, and an event without an id gets
one derived from its content, so a batch sent again after a timeout or a ``503`` adds nothing
twice. ``send`` retries what a client should (``503`` and ``429`` after their ``Retry-After``,
``502``/``504``, connection errors and timeouts) a bounded number of times, and raises
:class:`ClientError` for anything else, with the problems the server named.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

__all__ = ["AsyncClient", "Client", "ClientError", "SendResult"]

#: Answers worth sending the same request again for (after a pause).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Bodies larger than this are sent gzipped.
GZIP_BYTES = 64 * 1024


class ClientError(Exception):
    """The server refused a request: ``status``, its error ``code``, ``message`` and
    ``problems`` (for a refused batch: ``index``, ``field``, ``message`` of each)."""

    def __init__(
        self, status: int, code: str, message: str, problems: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.problems = list(problems)


@dataclass(slots=True)
class SendResult:
    """What ``send`` stored: events ``accepted``, ``duplicates`` (already stored), ``batches``."""

    accepted: int = 0
    duplicates: int = 0
    batches: int = 0

    def add(self, answer: Mapping[str, Any]) -> None:
        self.accepted += int(answer["accepted"])
        self.duplicates += int(answer["duplicates"])
        self.batches += 1


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _batches(events: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _post_batch(batch: Sequence[Mapping[str, Any]]) -> _Request:
    body = b"\n".join(orjson.dumps(e) for e in batch)
    headers = {"Content-Type": "application/x-ndjson"}
    if len(body) > GZIP_BYTES:
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return _Request("POST", "/api/v1/events", content=body, headers=headers)


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware (or strings the server reads)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _range(start: datetime | str | None, end: datetime | str | None) -> dict[str, str]:
    params = {}
    if (s := _time(start)) is not None:
        params["from"] = s
    if (e := _time(end)) is not None:
        params["to"] = e
    return params


def _sessions_request(
    kind: str,
    start: datetime | str | None,
    end: datetime | str | None,
    filters: Mapping[str, str | Sequence[str]] | None,
    page_size: int,
    clip: bool,
    cursor: str | None,
) -> _Request:
    params = {"kind": kind, "limit": str(page_size), **_range(start, end)}
    for name, value in (filters or {}).items():
        params[name] = value if isinstance(value, str) else ",".join(value)
    if clip:
        params["clip"] = "true"
    if cursor:
        params["cursor"] = cursor
    return _Request("GET", "/api/v1/sessions", params)


def _timeseries_request(
    kind: str,
    metric: str,
    start: datetime | str | None,
    end: datetime | str | None,
    interval: str,
) -> _Request:
    params = {"kind": kind, "metric": metric, "interval": interval, **_range(start, end)}
    return _Request("GET", "/api/v1/timeseries", params)


def _session_request(kind: str, session: str) -> _Request:
    return _Request("GET", f"/api/v1/sessions/{quote(kind, safe='')}/{quote(session, safe='@~')}")


def _delay(response: httpx.Response | None, attempt: int) -> float:
    """How long to wait before trying again: the answer's Retry-After, else exponential."""
    if response is not None:
        text = str(response.headers.get("retry-after", ""))
        if text.strip().isdigit():
            return min(float(text.strip()), 60.0)
    return min(0.25 * 2.0**attempt, 10.0)


def _checked(response: httpx.Response) -> Any:
    if response.status_code == 200:
        return response.json()
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    raise ClientError(
        response.status_code,
        str(error.get("code", "error")),
        str(error.get("message", response.text[:300])),
        error.get("problems", ()),
    )


class Client:
    """A blocking client; use it as a context manager (or call ``close``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        retries: int = 8,
        batch_size: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.batch_size = batch_size
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, req: _Request) -> Any:
        attempt = 0
        while True:
            response = None
            try:
                response = self._http.request(
                    req.method, req.path, params=req.params, content=req.content,
                    headers=req.headers,
                )  # fmt: skip
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return _checked(response)
            time.sleep(_delay(response, attempt))
            attempt += 1

    def send(self, events: Iterable[Mapping[str, Any]]) -> SendResult:
        """Send events (any iterable: batched as it is read); raise :class:`ClientError` when a
        batch is refused (batches before it are stored)."""
        result = SendResult()
        for batch in _batches(events, self.batch_size):
            result.add(self._call(_post_batch(batch)))
        return result

    def sessions(
        self,
        kind: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        page_size: int = 200,
        clip: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every session active in the range, newest first, following each page's ``next``."""
        cursor = None
        while True:
            page = self._call(_sessions_request(kind, start, end, filters, page_size, clip, cursor))
            yield from page["sessions"]
            cursor = page.get("next")
            if not cursor:
                return

    def session(self, kind: str, session: str) -> dict[str, Any]:
        """One session with its metrics and its events."""
        found: dict[str, Any] = self._call(_session_request(kind, session))
        return found

    def timeseries(
        self,
        kind: str,
        metric: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        interval: str = "auto",
    ) -> list[dict[str, Any]]:
        """The metric's points, oldest first."""
        answer = self._call(_timeseries_request(kind, metric, start, end, interval))
        points: list[dict[str, Any]] = answer["points"]
        return points


class AsyncClient:
    """The same as :class:`Client`, for asyncio."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        retries: int = 8,
        batch_size: int = 1000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.batch_size = batch_size
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, req: _Request) -> Any:
        attempt = 0
        while True:
            response = None
            try:
                response = await self._http.request(
                    req.method, req.path, params=req.params, content=req.content,
                    headers=req.headers,
                )  # fmt: skip
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return _checked(response)
            await asyncio.sleep(_delay(response, attempt))
            attempt += 1

    async def send(self, events: Iterable[Mapping[str, Any]]) -> SendResult:
        result = SendResult()
        for batch in _batches(events, self.batch_size):
            result.add(await self._call(_post_batch(batch)))
        return result

    async def sessions(
        self,
        kind: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        page_size: int = 200,
        clip: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = await self._call(
                _sessions_request(kind, start, end, filters, page_size, clip, cursor)
            )
            for session in page["sessions"]:
                yield session
            cursor = page.get("next")
            if not cursor:
                return

    async def session(self, kind: str, session: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call(_session_request(kind, session))
        return found

    async def timeseries(
        self,
        kind: str,
        metric: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        interval: str = "auto",
    ) -> list[dict[str, Any]]:
        answer = await self._call(_timeseries_request(kind, metric, start, end, interval))
        points: list[dict[str, Any]] = answer["points"]
        return points
