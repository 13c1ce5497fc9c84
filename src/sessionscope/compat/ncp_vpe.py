"""NAVER Cloud Video Player Enhancement (Media Analytics): a drop-in compatible API.

``GET /v1/sessionRecent``, ``GET /v1/sessionRecent/{uuid}`` and ``GET /v1/charts/{currentViewers,
playCnt,playTimeSum,uniqUserCnt}``, authenticated with ``x-api-key`` (a project API key) and
``x-project-id`` (that key's project id). This module only translates: it parses NAVER's
parameters, asks the session service and the store for player sessions, their events and time
series, and shapes the answers and errors the way NAVER Cloud does. Decisions taken where the
vendor is silent are listed in ``docs/compat/ncp-vpe.md``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid as uuidlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from sessionscope.api.auth import project_for_key
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError, register_error_shape
from sessionscope.api.metrics import note_project
from sessionscope.api.responses import JSON
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.domain.sessions import PlayerSession
from sessionscope.domain.timerange import (
    INTERVALS,
    TimeRangeError,
    auto_interval,
    floor_time,
    parse_instant,
    span_label,
    utc_clock,
)
from sessionscope.registry import DemoHooks, Vendor

__all__ = [
    "PREFIXES",
    "install",
    "mask_uuid",
    "naver_error",
    "router",
    "session_no",
    "video_time",
    "vpe_project",
]

router = APIRouter(tags=["NAVER Cloud VPE (compatible)"])

#: Path prefixes whose errors come out in NAVER Cloud's shape.
PREFIXES: tuple[str, ...] = ("/v1/sessionRecent", "/v1/charts")

#: NAVER Cloud API Gateway error codes by HTTP status (``900`` for anything 5xx).
_ERROR_CODES: dict[int, str] = {
    400: "100",
    401: "200",
    403: "210",
    404: "300",
    405: "100",
    413: "430",
    422: "100",
    429: "420",
}

_DEVICES = {"pc": "PC", "mobile": "Mobile"}
_VIDEO_TYPES = {"vod": "VOD", "live": "LIVE"}
_DEFAULT_SPAN = timedelta(days=1)
_MAX_LIMIT = 100
_MAX_POINTS = 20000
#: ``no`` values are in 1 .. 2**53 - 1: integers every JSON client reads exactly.
_NO_SPACE = 2**53 - 1
#: Integers are ASCII digits only (``str.isdigit`` also takes "²" or Arabic-Indic digits).
_DIGITS = re.compile(r"[0-9]{1,20}")


# ------------------------------------------------------------------------------ errors


def naver_error(err: ApiError, request: Request) -> Response:
    """Shape an error as NAVER Cloud does: ``{"error": {"errorCode", "message"}}``."""
    code = "900" if err.status >= 500 else _ERROR_CODES.get(err.status, "100")
    body = {"error": {"errorCode": code, "message": err.message}}
    return JSON(body, status_code=err.status, headers=err.headers)


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", f"{param}: {message}")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


# ------------------------------------------------------------------------------ auth


def vpe_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency: the project of ``x-api-key``, which must be the one ``x-project-id`` names."""
    key = request.headers.get("x-api-key", "").strip()
    project_id = request.headers.get("x-project-id", "").strip()
    if not key:
        raise _unauthorized("x-api-key: header is required (a project API key)")
    if not project_id:
        raise _unauthorized("x-project-id: header is required (the id of the key's project)")
    project = project_for_key(ctx, key, "read")
    if project is None:
        raise _unauthorized("x-api-key: not a valid API key")
    if not _DIGITS.fullmatch(project_id) or int(project_id) != project.id:
        raise _unauthorized("x-project-id: does not match the project of the API key")
    note_project(request, project.id)
    return project


# ------------------------------------------------------------------------------ parameters


def _choices(value: str | None, param: str, allowed: dict[str, str]) -> list[str] | None:
    """Parse a comma-separated list of allowed values (case-insensitive); None when absent."""
    if value is None or not value.strip():
        return None
    names = " | ".join(allowed.values())
    out: list[str] = []
    for part in value.split(","):
        canonical = allowed.get(part.strip().lower())
        if canonical is None:
            raise _bad(param, f"must be {names} or both comma-separated, not {part.strip()!r}")
        if canonical not in out:
            out.append(canonical)
    return out


def _filters(device: str | None, video_type: str | None) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    devices = _choices(device, "device", _DEVICES)
    if devices is not None:
        filters["device"] = devices
    types = _choices(video_type, "videoType", _VIDEO_TYPES)
    if types is not None:
        filters["video_type"] = types
    return filters


def _instant(value: str | None, param: str, *, end_of_day: bool = False) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_instant(value, param, end_of_day=end_of_day)
    except TimeRangeError as exc:
        raise _bad(exc.param, exc.message) from None


def _range(start_text: str | None, end_text: str | None) -> tuple[datetime, datetime]:
    """The query window: the last 24 hours by default; a bare ``endDate`` is its whole day."""
    start = _instant(start_text, "startDate")
    end = _instant(end_text, "endDate", end_of_day=True)
    if end is None:
        end = datetime.now(UTC)
        if start is not None and start > end:
            raise _bad("startDate", "must not be in the future when endDate is not given")
    if start is None:
        start = end - _DEFAULT_SPAN
    if end < start:
        raise _bad("endDate", "must not be before startDate")
    return start, end


def _span(start: datetime, end: datetime) -> timedelta:
    # A bare endDate ends at the day's last millisecond; whole seconds keep the label round.
    return timedelta(seconds=round((end - start).total_seconds()))


def _limit(value: str | None) -> int:
    if value is None or not value.strip():
        return _MAX_LIMIT
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= _MAX_LIMIT:
        raise _bad("limit", f"must be an integer from 1 to {_MAX_LIMIT}, not {text[:20]!r}")
    return int(text)


# ------------------------------------------------------------------------------ formatting


def session_no(project_id: int, session: str) -> int:
    """Return the session's ``no``: a positive integer fixed by project and session id.

    The first 8 bytes of SHA-256 over ``"<project id>:<session id>"``, reduced into
    ``1 .. 2**53 - 1``. It never changes and needs no storage; two sessions of one project
    share a number only with negligible probability (about n**2 / 2**54 for n sessions).
    """
    digest = hashlib.sha256(f"{project_id}:{session}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _NO_SPACE + 1


@functools.lru_cache(maxsize=4096)  # a session's events share its user
def mask_uuid(value: str) -> str:
    """Keep a uuid's first and last groups and mask the three in between with ``****``."""
    parts = value.split("-")
    if len(parts) != 5:
        return value
    return "-".join([parts[0], "****", "****", "****", parts[4]])


def video_time(seconds: Any) -> str:
    """Format a playback position in seconds as ``HH:MM:SS`` (whole seconds, floored)."""
    try:
        total = max(0, int(float(seconds or 0)))
    except (TypeError, ValueError):
        total = 0
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _date(t: datetime) -> str:
    return utc_clock(t, " ")


def _seconds(ms: int | float) -> float:
    return ms / 1000


def _log_entry(e: Event) -> dict[str, Any]:
    return {
        "logDate": _date(e.time),
        "videoTime": video_time(e.attr("video_time")),
        "actionType": e.type,
        "actionDuration": int(e.duration_ms or 0),
        "uuid": mask_uuid(e.user),
    }


def _list_item(project: Project, s: PlayerSession, events: Sequence[Event]) -> dict[str, Any]:
    m = s.metrics
    return {
        "logDate": _date(s.end),
        "no": str(session_no(project.id, s.session)),
        "uuid": s.user,
        "origin": s.origin,
        "os": s.os,
        "device": s.device,
        "totalStartTime": _seconds(m.total_start_ms),
        "rebufferingTime": _seconds(m.rebuffering_ms),
        "playingTime": _seconds(m.playing_ms),
        "isError": m.is_error,
        "sessionLog": [_log_entry(e) for e in events],
    }


def _latest(events: Sequence[Event], name: str) -> str | None:
    """The most recent non-empty value of a detail field among a session's events."""
    for e in reversed(events):
        value = e.attr(name)
        if value:
            return str(value)
    return None


def _error_entry(e: Event) -> dict[str, Any]:
    """An ``error`` event: its log entry, then the player's error code and message (or null)."""
    return {
        **_log_entry(e),
        "errorCode": e.attr("error_code") or None,
        "errorMessage": e.attr("error_message") or None,
    }


def _detail(s: PlayerSession, events: Sequence[Event]) -> dict[str, Any]:
    m = s.metrics
    return {
        "startTime": {
            "playerStartTimeSum": _seconds(m.player_start_ms),
            "videoStartTimeSum": _seconds(m.video_start_ms),
            "totalStartTimeSum": _seconds(m.total_start_ms),
        },
        "user": {
            "os": s.os or None,
            "isp": _latest(events, "isp"),
            "nation": _latest(events, "nation"),
            "address": _latest(events, "address"),
            "browser": _latest(events, "browser"),
            "ip": _latest(events, "ip"),
            "device": s.device or None,
            "screen": _latest(events, "screen"),
            "lang": _latest(events, "lang"),
            "visitedPage": _latest(events, "page"),
        },
        "player": {
            "playerName": _latest(events, "player_name"),
            "playerVersion": _latest(events, "player_version"),
        },
        "error": [_error_entry(e) for e in events if e.type == "error"],
        "sessionLog": [_log_entry(e) for e in events],
        "media": {"source": _latest(events, "media"), "videoType": s.video_type or None},
    }


# ------------------------------------------------------------------------------ sessions


@router.get("/v1/sessionRecent")
def session_recent(
    device: str | None = Query(None, description="PC, Mobile or PC,Mobile (default: any)"),
    video_type: str | None = Query(
        None, alias="videoType", description="VOD, LIVE or VOD,LIVE (default: any)"
    ),
    start_date: str | None = Query(
        None, alias="startDate", description="YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' or ISO 8601 (UTC)"
    ),
    end_date: str | None = Query(
        None, alias="endDate", description="default now; a bare date means its whole day"
    ),
    limit: str | None = Query(None, description="1 to 100 (default 100)"),
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """The most recent player sessions (by their last event), each with its action log."""
    filters = _filters(device, video_type)
    start, end = _range(start_date, end_date)
    count = _limit(limit)
    sessions = ctx.service.player_sessions(
        project,
        start=start,
        end=end,
        filters=filters,
        limit=count,
        ended_within=True,
        order_by="end",
    )
    events = ctx.service.session_events(project, "player", [s.session for s in sessions])
    return JSON(
        {
            "code": 200,
            "message": f"sessionRecent ({span_label(_span(start, end))})",
            "result": [_list_item(project, s, events.get(s.session, [])) for s in sessions],
        }
    )


@router.get("/v1/sessionRecent/{uuid}")
def session_detail(
    uuid: str,
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """The most recent session of one user (the ``uuid`` of ``sessionRecent``) in detail."""
    try:
        user = str(uuidlib.UUID(uuid.strip()))
    except ValueError:
        raise _bad("uuid", f"must be a UUID, not {uuid[:40]!r}") from None
    found = ctx.service.player_sessions(project, filters={"user": [user]}, limit=1, order_by="end")
    if not found:
        raise ApiError(404, "not_found", f"uuid: no session of user {user} in this project")
    s = found[0]
    events = ctx.service.session_events(project, "player", [s.session]).get(s.session, [])
    return JSON({"code": 200, "message": "sessionRecent", "result": _detail(s, events)})


# ------------------------------------------------------------------------------ charts


def _count(value: Any) -> int:
    return int(value)


#: Chart name -> (result field, core player metric, conversion).
_CHARTS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "currentViewers": ("currentViewerCnt", "players", _count),
    "playCnt": ("playCnt", "sessions", _count),
    "playTimeSum": ("playTimeSum", "playing_time", _seconds),
    "uniqUserCnt": ("uniqUsers", "viewers", _count),
}


def _chart(
    ctx: AppContext,
    project: Project,
    name: str,
    filters: dict[str, list[str]],
    start: datetime,
    end: datetime,
    step: timedelta,
    label: str,
) -> JSON:
    if (end - start) / step > _MAX_POINTS:
        raise _bad("startDate", f"range too long: at most {_MAX_POINTS} points")
    field, metric, convert = _CHARTS[name]
    if metric == "players":
        points = ctx.service.active_players(project, start, end, step, filters=filters)
    else:
        points = ctx.service.timeseries(project, "player", start, end, step, filters=filters)
    return JSON(
        {
            "code": 200,
            "message": f"{name} ({label})",
            "result": [
                {field: convert(p[metric]), "logDate": _date(p["time"])} for p in reversed(points)
            ],
        }
    )


def _ranged_chart(
    ctx: AppContext,
    project: Project,
    name: str,
    device: str | None,
    video_type: str | None,
    start_date: str | None,
    end_date: str | None,
) -> JSON:
    filters = _filters(device, video_type)
    start, end = _range(start_date, end_date)
    span = _span(start, end)
    return _chart(ctx, project, name, filters, start, end, auto_interval(span), span_label(span))


_DEVICE_Q = Query(None, description="PC, Mobile or PC,Mobile (default: any)")
_TYPE_Q = Query(None, alias="videoType", description="VOD, LIVE or VOD,LIVE (default: any)")
_START_Q = Query(None, alias="startDate", description="default: 24 hours before endDate")
_END_Q = Query(None, alias="endDate", description="default: now")


@router.get("/v1/charts/currentViewers")
def current_viewers(
    device: str | None = _DEVICE_Q,
    video_type: str | None = _TYPE_Q,
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Players (sessions) with activity in each minute of the last hour, newest minute first."""
    filters = _filters(device, video_type)
    step = INTERVALS["1m"]
    end = datetime.now(UTC)
    start = floor_time(end, step) - 59 * step
    return _chart(ctx, project, "currentViewers", filters, start, end, step, span_label(60 * step))


@router.get("/v1/charts/playCnt")
def play_count(
    device: str | None = _DEVICE_Q,
    video_type: str | None = _TYPE_Q,
    start_date: str | None = _START_Q,
    end_date: str | None = _END_Q,
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Plays (player sessions, in the bucket of their start) per interval, newest first."""
    return _ranged_chart(ctx, project, "playCnt", device, video_type, start_date, end_date)


@router.get("/v1/charts/playTimeSum")
def play_time_sum(
    device: str | None = _DEVICE_Q,
    video_type: str | None = _TYPE_Q,
    start_date: str | None = _START_Q,
    end_date: str | None = _END_Q,
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Seconds of playback reported in each interval, newest first."""
    return _ranged_chart(ctx, project, "playTimeSum", device, video_type, start_date, end_date)


@router.get("/v1/charts/uniqUserCnt")
def unique_users(
    device: str | None = _DEVICE_Q,
    video_type: str | None = _TYPE_Q,
    start_date: str | None = _START_Q,
    end_date: str | None = _END_Q,
    project: Project = Depends(vpe_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Distinct users with player activity in each interval, newest first."""
    return _ranged_chart(ctx, project, "uniqUserCnt", device, video_type, start_date, end_date)


# ------------------------------------------------------------------------------ wiring


def install(app: FastAPI) -> None:
    """Add the NAVER Cloud VPE routes to ``app`` and shape their errors the NAVER way."""
    app.include_router(router)
    for prefix in PREFIXES:
        register_error_shape(prefix, naver_error)


# ------------------------------------------------------------------------------ demo


def _demo_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the Video Player Enhancement API: a few curls with the demo API key."""
    vpe = f"-H 'x-api-key: {creds['api_key']}' -H 'x-project-id: {creds['project_id']}'"
    return [
        "NAVER Cloud Video Player Enhancement (Media Analytics), docs/compat/ncp-vpe.md:",
        f"  curl -s {vpe} '{base}/v1/sessionRecent?device=PC,Mobile&videoType=VOD,LIVE&limit=5'",
        f"  curl -s {vpe} '{base}/v1/charts/playCnt'",
        f"  curl -s {vpe} '{base}/v1/charts/currentViewers'",
    ]


DEMO = DemoHooks(_demo_help)

#: What this API adds to the core (registered by ``compat/__init__``).
VENDOR = Vendor("ncp-vpe", install, demo=DEMO)
