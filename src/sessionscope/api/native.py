"""The native API: ``/api/v1`` events, sessions and time series, and ``/healthz``.

Handlers only translate: they parse parameters, call the ingest pipeline or the session service,
and serialise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from sessionscope.api.auth import bearer_project, ingest_project
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError
from sessionscope.api.responses import JSON
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS, format_time
from sessionscope.domain.timerange import TimeRangeError, parse_instant, parse_interval
from sessionscope.ingest.pipeline import IngestError, ingest_async
from sessionscope.service import (
    FILTERS,
    METRICS,
    CursorError,
    SessionQuery,
    session_to_dict,
)

__all__ = ["ingest_events", "install", "router"]

router = APIRouter()


def install(app: FastAPI) -> None:
    """Add the native routes (ingest is answered in front of them: see ``api.hotpath``)."""
    app.include_router(router)


_RESERVED = {"kind", "from", "to", "limit", "cursor", "clip"}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ApiError(400, "bad_request", f"parameter kind: must be one of {', '.join(KINDS)}")
    return kind


def _instant(value: str | None, param: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_instant(value, param, end_of_day=param == "to")
    except TimeRangeError as exc:
        raise ApiError(400, "bad_request", f"parameter {exc.param}: {exc.message}") from None


def _range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise ApiError(400, "bad_request", "parameter to: must not be before from")


@router.get("/healthz", tags=["meta"])
def healthz(ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Liveness and store reachability, and how far the ingest journal's loader is."""
    ctx.store.query("SELECT 1")
    return {
        "status": "ok",
        "store": "embedded" if ctx.settings.embedded else "clickhouse",
        "journal": ctx.ingestor.status(),
    }


@router.post("/api/v1/events", tags=["events"])
async def post_events(
    request: Request,
    project: Project = Depends(ingest_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Ingest events: a JSON array, one JSON object, or NDJSON; gzip accepted.

    Answers only once the events are durable (fsynced in the ingest journal; the store is loaded
    behind it and every read waits for what was acknowledged before it). Resending a batch
    stores nothing twice. 503 with Retry-After when the journal is full or its disk is.

    The key may also come as a `key` query parameter (this route only: browsers'
    `navigator.sendBeacon` cannot set a header); other origins may post here (CORS).
    """
    # As served, this route is answered by ``api.hotpath`` with the same code, in front of the
    # middleware stack; this function is its documentation and serves only apps without it.
    return await ingest_events(request, project, ctx)


async def ingest_events(request: Request, project: Project, ctx: AppContext) -> JSON:
    limit = ctx.settings.max_body_bytes
    headers = request.headers
    declared = headers.get("content-length")
    encoding = headers.get("content-encoding")
    if encoding is None and declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        # A gzip body may not shrink much; refuse raw bodies far past the decoded limit early.
        if size > limit * 2 + 1024:
            raise ApiError(413, "too_large", f"body is larger than {limit} bytes")
        chunks.append(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    try:
        result = await ingest_async(
            ctx.ingestor,
            project.id,
            body,
            content_type=headers.get("content-type"),
            content_encoding=encoding,
            max_bytes=limit,
        )
    except IngestError as exc:
        raise ApiError(
            exc.status,
            exc.code,
            exc.message,
            problems=[p.as_dict() for p in exc.problems],
            headers=exc.headers,
        ) from None
    return JSON(result.as_dict())


@router.get("/api/v1/sessions", tags=["sessions"])
def list_sessions(
    request: Request,
    kind: str = Query(..., description="player, channel, desktop or endpoint"),
    from_: str | None = Query(None, alias="from", description="sessions active at or after"),
    to: str | None = Query(None, description="sessions active at or before"),
    limit: int = Query(50, ge=1, le=1000),
    cursor: str | None = Query(None, description="the `next` of the previous page"),
    clip: bool = Query(False, description="desktop: clip sessions to from/to"),
    project: Project = Depends(bearer_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Sessions newest first, one page at a time; follow `next` to get each exactly once.

    Filters (comma-separated values are ORed): player `device`, `video_type`, `user`;
    channel `channel`; desktop `user_id`; endpoint `agent_id`, `visited_site`, `protocol`,
    `port`, `source_addr`.
    """
    kind = _kind(kind)
    start, end = _instant(from_, "from"), _instant(to, "to")
    _range(start, end)
    filters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name in _RESERVED:
            continue
        if name not in FILTERS[kind]:
            allowed = ", ".join(FILTERS[kind])
            raise ApiError(
                400, "bad_request", f"parameter {name}: not a filter of {kind} (use {allowed})"
            )
        filters.setdefault(name, []).extend(v for v in value.split(",") if v)
    query = SessionQuery(kind, start, end, filters, limit, cursor, clip)
    try:
        page = ctx.service.list_sessions(project, query)
    except CursorError as exc:
        raise ApiError(400, "bad_request", f"parameter cursor: {exc}") from None
    now = datetime.now(UTC)
    return JSON({"sessions": [session_to_dict(s, now) for s in page.sessions], "next": page.next})


@router.get("/api/v1/sessions/{kind}/{session}", tags=["sessions"])
def get_session(
    kind: str,
    session: str,
    project: Project = Depends(bearer_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """One session with its metrics and its events in time order."""
    kind = _kind(kind)
    found = ctx.service.get_session(project, kind, session)
    if found is None:
        raise ApiError(404, "not_found", f"no {kind} session {session!r} in this project")
    s, events = found
    body = session_to_dict(s)
    body["events"] = [e.as_dict() for e in events]
    return JSON(body)


@router.get("/api/v1/timeseries", tags=["sessions"])
def timeseries(
    kind: str = Query(...),
    metric: str | None = Query(None, description="one metric; all of the kind when absent"),
    from_: str | None = Query(None, alias="from", description="default: 24 hours before `to`"),
    to: str | None = Query(None, description="default: now"),
    interval: str = Query("auto", description="auto, 1m, 5m, 1h or 1d"),
    project: Project = Depends(bearer_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Metrics per time bucket, oldest first. `auto`: 5-minute buckets up to a day, else daily.

    Player: sessions, viewers, playing_time, startup_p50, startup_p95, rebuffer_ratio,
    error_rate. Desktop: active_users, idle_time, productive_time. Endpoint: sessions, pages,
    experience_score. Channel: events, errors.
    """
    kind = _kind(kind)
    if metric is not None and metric not in METRICS[kind]:
        raise ApiError(
            400,
            "bad_request",
            f"parameter metric: must be one of {', '.join(METRICS[kind])} for {kind}",
        )
    end = _instant(to, "to") or datetime.now(UTC)
    start = _instant(from_, "from") or end - timedelta(days=1)
    _range(start, end)
    try:
        step = parse_interval(interval, end - start)
    except TimeRangeError as exc:
        raise ApiError(400, "bad_request", f"parameter {exc.param}: {exc.message}") from None
    if (end - start) / step > 20000:
        raise ApiError(400, "bad_request", "parameter interval: too many points; use a larger one")
    points = ctx.service.timeseries(project, kind, start, end, step)
    names = [metric] if metric else list(METRICS[kind])
    return JSON(
        {
            "kind": kind,
            "interval_s": int(step.total_seconds()),
            "units": {n: METRICS[kind][n] for n in names},
            "points": [
                {"time": format_time(p["time"]), **{n: p[n] for n in names}} for p in points
            ],
        }
    )


@router.get("/api/v1/project", tags=["meta"])
def current_project(project: Project = Depends(bearer_project)) -> dict[str, Any]:
    """The project the API key belongs to, with its settings."""
    return project.as_dict()
