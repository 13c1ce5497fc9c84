"""Secrets never reach the logs."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionscope.logs import (
    AccessLines,
    BackgroundStreamHandler,
    RedactSecrets,
    install_redaction,
    printable,
    redact,
    server_log_config,
)
from tests.conftest import cli_json, serve_process
from tests.factories import desktop


def test_redact_query_values() -> None:
    assert redact("/cb?apiKey=ssk_abc_def&x=1") == "/cb?apiKey=***&x=1"
    assert redact("/p?a=1&token=t0k&Signature=zz") == "/p?a=1&token=***&Signature=***"
    assert redact("/plain?page=2") == "/plain?page=2"
    assert "s3cret" not in redact("/cb?api%4Bey=s3cret")
    # A URL carried in another's parameter, encoded once or twice.
    assert redact("/cb?u=https%3A%2F%2Fh%2Fp%3Fkey%3Ds3cret&x=1") == "/cb?u=https://h/p?key=***&x=1"
    assert "s3cret" not in redact("/cb?u=https%253A%252F%252Fh%253Ftoken%253Ds3cret")


def test_redact_never_decodes_what_could_forge_a_log_line() -> None:
    """A newline, a quote or a space stays encoded: decoded, it would start a forged line or
    close the access log's quoted request."""
    forged = "/x?a=%0AINFO:%20forged%22%0D%09"
    assert redact(forged) == forged
    assert redact("/x?a=%250A") == "/x?a=%0A"


@contextlib.contextmanager
def _written(name: str, fmt: str) -> Iterator[io.StringIO]:
    """The records of logger ``name`` written only to the returned text, by a handler of their
    own as a server's config gives it, the redaction installed; the logger restored after."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    logger = logging.getLogger(name)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    install_redaction()
    try:
        yield stream
    finally:
        logger.handlers, level, logger.propagate = saved
        logger.setLevel(level)


def test_control_characters_are_escaped_in_any_record_a_handler_writes() -> None:
    """A filter on a logger misses its children's records: the handlers carry it too."""
    assert printable("a\nb\x1b[2J\x85c\té") == "a\\x0ab\\x1b[2J\\x85c\\x09é"
    assert printable("a\u2028b\u2029") == "a\\u2028b\\u2029"
    assert printable("plain, ünïcode ✓") == "plain, ünïcode ✓"
    with _written("sessionscope", "%(levelname)s %(message)s") as stream:
        child = logging.getLogger("sessionscope.test.child")
        child.warning("refused %s from %s", "/p?token=s3cret\nINFO forged", "x")
        child.warning("failed: %s", ValueError("line one\nline two"))
    assert stream.getvalue().splitlines() == [
        "WARNING refused /p?token=***\\x0aINFO forged from x",
        "WARNING failed: line one\\x0aline two",
    ]


def test_access_log_is_redacted(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", "/api/v2/callbacks/events?apiKey=ssk_x_y", "1.1", 200),
        None,
    )
    RedactSecrets().filter(record)
    assert "ssk_x_y" not in record.getMessage()
    # The running app installed the filter on uvicorn's access logger.
    http.get("/healthz")
    assert any(isinstance(f, RedactSecrets) for f in logging.getLogger("uvicorn.access").filters)


def test_background_handler_writes_every_line_in_order() -> None:
    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("sessionscope.test.background")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(2_000):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()  # drains the queue before returning
    assert stream.getvalue().splitlines() == [f"line {i}" for i in range(2_000)]
    handler.close()  # closing twice is harmless


def test_server_log_config_writes_off_the_event_loop() -> None:
    for log_format in ("text", "json"):
        config = server_log_config(log_format)
        classes = {h["class"] for h in config["handlers"].values()}
        assert classes == {"sessionscope.logs.BackgroundStreamHandler"}


def test_serve_writes_one_access_line_per_request_in_uvicorns_format(tmp_path: Path) -> None:
    """``serve`` writes the access lines itself (``AccessLines``): each answered request once,
    the ingest hot path's and the stack's alike, as uvicorn wrote them, secrets redacted."""
    data = tmp_path / "data"
    cli_json(data, "projects", "create", "logs")
    key = cli_json(data, "keys", "create", "--project", "logs")["api_key"]
    log_path = tmp_path / "serve.log"
    auth = {"Authorization": f"Bearer {key}"}
    event = desktop()
    with serve_process(data, log_path=log_path) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        answer = httpx.post(f"{base}/api/v1/events?token=s3cret-1", json=event, headers=auth)
        assert answer.status_code == 200, answer.text
        assert httpx.post(f"{base}/api/v1/events", json={}, headers=auth).status_code == 400
        assert httpx.post(f"{base}/api/v1/events?apiKey=s3cret-2", json=event).status_code == 401
        assert httpx.get(f"{base}/nowhere?signature=s3cret-3&page=2").status_code == 404
        forged = "/nowhere?a=%0AINFO:%20forged%22"
        assert httpx.get(f"{base}{forged}").status_code == 404
        # The app's own warning names the (decoded) path of a refused credential.
        escape = "/api/v1/sessions/player/x%1B%5B2J%0Bmoved"
        assert (
            httpx.get(f"{base}{escape}", headers={"Authorization": "Bearer no"}).status_code == 401
        )
    text = log_path.read_text()
    assert "s3cret" not in text
    # No control character but the lines' ends: none a client sent reaches the log raw.
    assert not [c for c in text if not c.isprintable() and c != "\n"]
    assert "WARNING:  refused GET /api/v1/sessions/player/x\\x1b[2J\\x0bmoved from" in text
    lines = [line for line in text.splitlines() if " HTTP/1.1" in line]
    # The start-up's health checks, then these requests, each once (not also by uvicorn).
    requests = [re.sub(r"^INFO:     127\.0\.0\.1:\d+ - ", "", line) for line in lines]
    assert set(requests[:-7]) == {'"GET /healthz HTTP/1.1" 200 OK'}
    assert not [line for line in text.splitlines() if "forged" in line and "/nowhere" not in line]
    assert requests[-7:] == [
        '"GET /healthz HTTP/1.1" 200 OK',
        '"POST /api/v1/events?token=*** HTTP/1.1" 200 OK',
        '"POST /api/v1/events HTTP/1.1" 400 Bad Request',
        '"POST /api/v1/events?apiKey=*** HTTP/1.1" 401 Unauthorized',
        '"GET /nowhere?signature=***&page=2 HTTP/1.1" 404 Not Found',
        f'"GET {forged} HTTP/1.1" 404 Not Found',
        f'"GET {escape} HTTP/1.1" 401 Unauthorized',
    ]


def test_access_lines_go_through_logging_where_the_logger_is_configured_otherwise() -> None:
    """A handler other than ``serve``'s (colours on a terminal, tests): the line is logged as
    uvicorn logs it, through the redaction filter."""
    with _written("uvicorn.access", "%(message)s") as stream:
        scope = {
            "client": ("10.0.0.9", 4242),
            "method": "GET",
            "raw_path": b"/cb",
            "query_string": b"apiKey=ssk_abc&x=1",
            "http_version": "1.1",
        }
        AccessLines().write(scope, 204)
    assert stream.getvalue() == '10.0.0.9:4242 - "GET /cb?apiKey=***&x=1 HTTP/1.1" 204\n'
