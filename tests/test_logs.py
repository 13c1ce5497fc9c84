"""Secrets never reach the logs."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from sessionscope.logs import BackgroundStreamHandler, RedactSecrets, redact, server_log_config


def test_redact_query_values() -> None:
    assert redact("/cb?apiKey=ssk_abc_def&x=1") == "/cb?apiKey=***&x=1"
    assert redact("/p?a=1&token=t0k&Signature=zz") == "/p?a=1&token=***&Signature=***"
    assert redact("/plain?page=2") == "/plain?page=2"
    assert "s3cret" not in redact("/cb?api%4Bey=s3cret")


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
