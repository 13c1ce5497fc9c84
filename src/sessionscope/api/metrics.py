"""Operations: ``/metrics`` (Prometheus text format), ``/readyz``, and per-request logs.

- ``/metrics``: requests by route, method and status; request latency by route (ingest and
  query routes alike); unhandled errors; events accepted and found duplicate and batches
  refused by reason (counted by the ingest journal, for every write path); the journal's depth
  and the loader's lag and totals, read when scraped.
- ``/readyz``: 200 once start-up is done (migrations, journal replay: the app serves only after
  both) and the store answers; 503 otherwise. ``/healthz`` stays liveness.
- With ``log_format="json"`` every request is logged as one JSON object (method, path without
  its query, route, status, duration, project id) on the ``sessionscope.access`` logger.

The metrics live in a registry of the app (not the process-wide default), so several apps in one
process (tests) count apart.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionscope.logs import AccessLines

__all__ = ["RequestMetrics", "RequestRecorder", "install", "note_project"]

access_log = logging.getLogger("sessionscope.access")

#: Latency buckets (seconds): an acknowledged single event takes about a millisecond, a session
#: page tens of milliseconds, a long dashboard range seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

router = APIRouter()


def note_project(request: Request, project_id: int) -> None:
    """Record the request's project (for its log line) and that its credential was accepted
    (``api.attempts``); called by each family's auth."""
    request.state.project_id = project_id
    request.state.credential_accepted = True


class RequestRecorder:
    """The request counters and the JSON request log, shared by :class:`RequestMetrics` and
    the ingest hot path (:mod:`sessionscope.api.hotpath`), which answers in front of it."""

    def __init__(self, registry: CollectorRegistry, log_json: bool) -> None:
        self.log_json = log_json
        #: uvicorn's access lines, when the app writes them (``serve``: see ``AccessLines``).
        self.access_lines: AccessLines | None = None
        self.requests = Counter(
            "sessionscope_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "sessionscope_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "sessionscope_http_unhandled_errors",
            "Requests that raised an unexpected error (answered 500; the log has the details).",
            registry=registry,
        )

    def record(self, scope: Scope, route: str, status: int, took: float) -> None:
        """Count one answered request (``route``: its template) and log it when asked."""
        self.requests.labels(route, scope.get("method", ""), str(status)).inc()
        self.latency.labels(route).observe(took)
        if self.log_json:
            _log_request(scope, route, status, took)
        elif self.access_lines is not None and status != 499:  # 499: nothing was answered
            self.access_lines.write(scope, status)


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request; log it as JSON when asked."""

    def __init__(self, app: ASGIApp, recorder: RequestRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            self.recorder.errors.inc()
            raise
        finally:
            self.recorder.record(scope, _route(scope), status, time.perf_counter() - start)


def _route(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), or ``unmatched``."""
    path = getattr(scope.get("route"), "path", None)
    if path is None and "endpoint" in scope:
        # A plain Starlette route (FastAPI's own /openapi.json) leaves only its endpoint.
        path = _endpoint_paths(scope["app"]).get(scope["endpoint"])
    return path if isinstance(path, str) and path else "unmatched"


def _endpoint_paths(app: Any) -> dict[Any, str]:
    """The path template of each endpoint of the app's top-level routes (worked out once)."""
    paths: dict[Any, str] | None = getattr(app.state, "metrics_endpoint_paths", None)
    if paths is None:
        paths = {}
        for route in app.router.routes:
            endpoint, path = getattr(route, "endpoint", None), getattr(route, "path", None)
            if endpoint is not None and isinstance(path, str):
                paths.setdefault(endpoint, path)
        app.state.metrics_endpoint_paths = paths
    return paths


def _log_request(scope: Scope, route: str, status: int, took: float) -> None:
    state = scope.get("state") or {}
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": scope.get("method", ""),
        # Without the query string: credentials may ride in it (callback URLs, sign-in links).
        "path": scope.get("path", ""),
        "route": route,
        "status": status,
        "duration_ms": round(took * 1000, 3),
        "project_id": state.get("project_id"),
    }
    client = scope.get("client")
    if client:
        record["client"] = client[0]
    access_log.info(json.dumps(record, separators=(",", ":")))


class _IngestCollector(Collector):
    """Ingest counters and the journal's state, read from the app's ingestor when scraped."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        ctx = getattr(self.app.state, "ctx", None)
        ingestor = getattr(ctx, "ingestor", None)
        if ingestor is None:
            return
        accepted, duplicates, refused = ingestor.counts.snapshot()
        events = CounterMetricFamily(
            "sessionscope_ingest_events",
            "Events acknowledged by ingest (accepted), and found already stored or sent "
            "(duplicate).",
            labels=["result"],
        )
        events.add_metric(["accepted"], accepted)
        events.add_metric(["duplicate"], duplicates)
        yield events
        refusals = CounterMetricFamily(
            "sessionscope_ingest_refused_batches",
            "Batches refused, by reason (the answer's error code).",
            labels=["reason"],
        )
        for reason, count in sorted(refused.items()):
            refusals.add_metric([reason], count)
        yield refusals
        status = ingestor.status()
        gauges = {
            "sessionscope_journal_pending_events": (
                "Events acknowledged (durable in the journal) and not loaded into the store yet.",
                status["pending_events"],
            ),
            "sessionscope_journal_bound_events": (
                "Pending events past which ingest answers 503 (backpressure).",
                status["bound_events"],
            ),
            "sessionscope_loader_lag_seconds": (
                "Age of the oldest event acknowledged and not yet loaded (0 when none).",
                status["loader_lag_s"],
            ),
            "sessionscope_loader_events_per_second": (
                "The loader's recent speed (moving average over its blocks).",
                status["loader_events_per_s"],
            ),
        }
        for name, (text, value) in gauges.items():
            yield GaugeMetricFamily(name, text, value=float(value))
        for name, text, value in (
            ("sessionscope_loader_blocks", "Blocks loaded into the store.", "blocks_loaded"),
            ("sessionscope_loader_events", "Events loaded into the store.", "events_loaded"),
        ):
            yield CounterMetricFamily(name, text, value=float(status[value]))


class _GuardCollector(Collector):
    """What the HTTP protocol refused before the app (``api.guard``), read when scraped."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        guard = getattr(self.app.state, "connection_guard", None)
        if guard is None:
            return
        for name, text, value in (
            (
                "sessionscope_refused_connections",
                "Connections refused as they were accepted: past the limit of an address, or "
                "of an address refused lately while the refusal budget was spent.",
                guard.refused_connections,
            ),
            (
                "sessionscope_unanswered_connections",
                "Connections closed without an answer (refused ones among them).",
                guard.dropped_connections,
            ),
            (
                "sessionscope_withheld_refusals",
                "Refusals not answered because the refusal budget was spent.",
                guard.budget.withheld,
            ),
        ):
            yield CounterMetricFamily(name, text, value=float(value))


class _HeapCollector(Collector):
    """The objects the server's process left out of garbage collection once started
    (``heap.freeze_startup_objects``)."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "sessionscope_python_frozen_objects",
            "Objects built at start-up and left out of garbage collection (0: none).",
            value=float(gc.get_freeze_count()),
        )


@router.get("/metrics", tags=["meta"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", tags=["meta"])
def readyz(request: Request) -> JSONResponse:
    """200 once start-up work is done and the store answers; 503 otherwise."""
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    try:
        ctx.store.query("SELECT 1")
    except Exception as exc:  # any failure of the store means: not ready
        reason = f"the store does not answer: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    if ctx.ingestor.last_error:
        # The loader cannot write: reads would wait for what it cannot load.
        reason = f"the loader cannot write: {ctx.ingestor.last_error[:200]}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


def install(app: FastAPI, *, log_json: bool = False) -> None:
    """Add ``/metrics``, ``/readyz`` and the request counting (and JSON logs) to ``app``."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_IngestCollector(app))
    registry.register(_GuardCollector(app))
    registry.register(_HeapCollector())
    GCCollector(registry=registry)  # python_gc_*: the collector's passes, by generation
    app.state.metrics_registry = registry
    app.state.request_recorder = recorder = RequestRecorder(registry, log_json)
    app.include_router(router)
    app.add_middleware(RequestMetrics, recorder=recorder)
