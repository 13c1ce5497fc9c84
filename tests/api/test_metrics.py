"""Operations: /metrics in Prometheus format, /readyz, and JSON request logs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sessionscope.api.metrics import RequestMetrics
from tests.conftest import Tenant, serve_process
from tests.factories import player


def _metrics(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_ingest_counters_rise_by_exactly_what_was_accepted(
    http: httpx.Client, tenant: Tenant
) -> None:
    before = _metrics(http)
    events = [player(id=f"metrics-{i}", session="metrics-s") for i in range(5)]
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.json() == {"accepted": 5, "duplicates": 0}
    r = http.post("/api/v1/events", json=events[:2], headers=tenant.auth)
    assert r.json() == {"accepted": 0, "duplicates": 2}
    assert (
        http.post("/api/v1/events", json=[player(user="x")], headers=tenant.auth).status_code == 400
    )
    after = _metrics(http)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("sessionscope_ingest_events_total", result="accepted") == 5
    assert delta("sessionscope_ingest_events_total", result="duplicate") == 2
    assert delta("sessionscope_ingest_refused_batches_total", reason="invalid_events") == 1
    route = {"route": "/api/v1/events", "method": "POST"}
    assert delta("sessionscope_http_requests_total", status="200", **route) == 2
    assert delta("sessionscope_http_requests_total", status="400", **route) == 1
    assert delta("sessionscope_http_request_duration_seconds_count", route="/api/v1/events") == 3
    # The journal's state is there, whatever its values.
    for name in (
        "sessionscope_journal_pending_events",
        "sessionscope_journal_bound_events",
        "sessionscope_loader_lag_seconds",
        "sessionscope_loader_events_total",
    ):
        assert any(key[0] == name for key in after), name


def test_reads_are_counted_by_route_template(http: httpx.Client, tenant: Tenant) -> None:
    before = _metrics(http)
    http.get("/api/v1/sessions/player/nope-1", headers=tenant.auth)
    http.get("/api/v1/sessions/player/nope-2", headers=tenant.auth)
    http.get("/no/such/path")
    after = _metrics(http)
    template = "/api/v1/sessions/{kind}/{session}"
    key = (
        "sessionscope_http_requests_total",
        (("method", "GET"), ("route", template), ("status", "404")),
    )
    assert after.get(key, 0) - before.get(key, 0) == 2
    unmatched = (
        "sessionscope_http_requests_total",
        (("method", "GET"), ("route", "unmatched"), ("status", "404")),
    )
    assert after.get(unmatched, 0) - before.get(unmatched, 0) == 1


def test_readyz_and_healthz(http: httpx.Client) -> None:
    assert http.get("/readyz").json() == {"status": "ready"}
    assert http.get("/healthz").status_code == 200


def test_json_logs_one_object_per_request_without_secrets(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve_process(tmp_path / "data", "--log-format", "json", log_path=log) as base:
        httpx.get(f"{base}/readyz", timeout=10)
        r = httpx.get(f"{base}/api/v1/sessions?kind=player&token=s3cret", timeout=10)
        assert r.status_code == 401
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    requests = [line for line in lines if "status" in line]
    assert {"method", "path", "route", "status", "duration_ms", "project_id"} <= set(requests[-1])
    sessions = [line for line in requests if line["path"] == "/api/v1/sessions"]
    assert sessions and sessions[0]["status"] == 401 and sessions[0]["project_id"] is None
    assert "s3cret" not in log.read_text()
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)


def test_metrics_middleware_is_pure_asgi() -> None:
    # Not BaseHTTPMiddleware: streaming answers and the ingest hot path pass through as they are.
    assert callable(RequestMetrics.__call__)
