"""The ingest hot path answers ``POST /api/v1/events`` in front of the middleware stack: it
must answer exactly as the documented route does behind the stack (same status, body and
headers), for accepted, refused and oversized batches, from any origin."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from sessionscope.api.hotpath import IngestHotPath
from sessionscope.app import create_app
from sessionscope.config import Settings
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import Tenant
from tests.factories import player

#: Headers whose values differ from one answer to the next.
_VARYING = {"date", "content-length"}


def _answers(
    settings: Settings,
    store: ClickHouseStore,
    ingestor: Ingestor,
    request: Callable[[str], dict[str, Any]],
) -> tuple[httpx.Response, httpx.Response]:
    """``request(tag)`` sent through the hot path and through the stack behind it."""
    app = create_app(settings, store=store, ingestor=ingestor)
    front = app.build_middleware_stack()
    assert isinstance(front, IngestHotPath)
    behind = front.app

    async def documented(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it before its middleware stack
        await behind(scope, receive, send)

    async def send(target: Any, tag: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request("POST", "/api/v1/events", **request(tag))

    async def both() -> tuple[httpx.Response, httpx.Response]:
        return await send(app, "hot"), await send(documented, "doc")

    return asyncio.run(both())


def _same(hot: httpx.Response, doc: httpx.Response) -> None:
    assert hot.status_code == doc.status_code
    assert hot.content.replace(b"hot", b"doc") == doc.content
    strip = {k: v for k, v in hot.headers.items() if k not in _VARYING}
    assert strip == {k: v for k, v in doc.headers.items() if k not in _VARYING}


@pytest.mark.parametrize("origin", [None, "https://player.example"])
@pytest.mark.parametrize(
    "case", ["accepted", "invalid", "no_key", "bad_key", "key_param", "not_json", "gzip_junk"]
)
def test_hot_path_answers_as_the_documented_route(
    settings: Settings,
    store: ClickHouseStore,
    ingestor: Ingestor,
    tenant: Tenant,
    case: str,
    origin: str | None,
) -> None:
    def request(tag: str) -> dict[str, Any]:
        headers = dict(tenant.auth)
        if origin:
            headers["Origin"] = origin
        params: dict[str, str] = {}
        body: Any = [player(id=f"hp-{case}-{origin}-{tag}", session=f"hp-{tag}")]
        if case == "invalid":
            body = [player(id=f"hp-{tag}", user="x", time="yesterday")]
        elif case == "no_key":
            del headers["Authorization"]
        elif case == "bad_key":
            headers["Authorization"] = "Bearer ssk_nope_nope"
        elif case == "key_param":
            del headers["Authorization"]
            params["key"] = tenant.api_key
        elif case == "not_json":
            return {"headers": headers, "content": b"{not json"}
        elif case == "gzip_junk":
            headers["Content-Encoding"] = "gzip"
            return {"headers": headers, "content": b"not gzip at all"}
        return {"headers": headers, "params": params, "json": body}

    hot, doc = _answers(settings, store, ingestor, request)
    _same(hot, doc)
    assert hot.headers["x-content-type-options"] == "nosniff"
    assert ("access-control-allow-origin" in hot.headers) == (origin is not None)
    expected = {
        "accepted": 200,
        "key_param": 200,
        "invalid": 400,
        "not_json": 400,
        "gzip_junk": 400,
        "no_key": 401,
        "bad_key": 401,
    }
    assert hot.status_code == expected[case], hot.text
    if hot.status_code == 200:
        assert hot.json() == {"accepted": 1, "duplicates": 0}


def test_hot_path_refuses_a_declared_oversize_body_at_once(
    settings: Settings, store: ClickHouseStore, ingestor: Ingestor, tenant: Tenant
) -> None:
    small = dataclasses.replace(settings, max_body_bytes=1_000)
    body = b"[" + b" " * 5_000 + b"]"
    hot, doc = _answers(small, store, ingestor, lambda _: {"headers": tenant.auth, "content": body})
    _same(hot, doc)
    assert hot.status_code == 413
    assert hot.headers["connection"] == "close"
    assert "larger than 3024 bytes" in hot.json()["error"]["message"]  # a gzip body of 1000


def test_a_client_leaving_mid_body_is_counted_not_logged_as_an_error(
    base_url: str, http: httpx.Client, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    def left() -> float:
        text = http.get("/metrics").text
        for line in text.splitlines():
            ours = line.startswith("sessionscope_http_requests_total{")
            if ours and 'status="499"' in line and 'route="/api/v1/events"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = left()
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {tenant.api_key}\r\n".encode()
            + b'Content-Length: 1000\r\n\r\n[{"kind":'
        )
    deadline = time.monotonic() + 30
    while left() == before:
        assert time.monotonic() < deadline, "the server never saw the client leave"
        time.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
