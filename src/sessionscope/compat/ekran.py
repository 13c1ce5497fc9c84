"""Ekran System (Syteca) API: a drop-in compatible version of its session endpoints.

``POST /ekranapi/sessions`` (sessions with duration, idle and productive time, paged),
``GET /ekranapi/sessions`` (the same sessions, short form) and ``GET /ekranapi/user/
getproductivity`` (active minutes per user and hour), authenticated with an ``ApiKey`` header
carrying a project API key. This module only translates: it parses Ekran's parameters, asks the
session service for desktop sessions (selected, clipped and measured by ``domain.sessions``
with the project's idle timeout) and shapes the answers the way Ekran does (.NET TimeSpan
durations, ISO 8601 dates with milliseconds). Decisions taken where the vendor is silent are
listed in ``docs/compat/ekran.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from sessionscope.api.auth import project_for_key
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError, register_error_shape
from sessionscope.api.limits import read_body
from sessionscope.api.metrics import note_project
from sessionscope.api.responses import JSON
from sessionscope.domain.accounts import Project
from sessionscope.domain.sessions import DesktopSession, UserActivity
from sessionscope.domain.timerange import MAX_INSTANT, MIN_INSTANT, utc_clock
from sessionscope.registry import DemoHooks, Vendor

__all__ = [
    "DEFAULT_SESSION_COUNT",
    "MAX_SESSION_COUNT",
    "PREFIX",
    "SessionsQuery",
    "ekran_error",
    "ekran_project",
    "format_date",
    "format_timespan",
    "install",
    "parse_sessions_query",
    "parse_time",
    "productivity_to_dict",
    "router",
    "session_to_dict",
    "short_session_to_dict",
]

router = APIRouter(tags=["Ekran System (compatible)"])

#: Path prefix whose errors come out in the Ekran (ASP.NET problem details) shape.
PREFIX = "/ekranapi"
DEFAULT_SESSION_COUNT = 1000
MAX_SESSION_COUNT = 1000
_INT32_MAX = 2_147_483_647

# The three forms the vendor documents, and nothing else; all UTC. ASCII digits only: ``\d``
# would also match "２" (full width) or Arabic-Indic digits, which strptime then reads.
_TIME_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"), "%Y-%m-%d"),
    (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"), "%Y-%m-%dT%H:%M"),
    (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"), "%Y-%m-%dT%H:%M:%S"),
)
_TIME_HELP = 'use "2021-04-01", "2021-04-01T12:00" or "2021-04-01T12:00:00" (UTC)'
_TIME_RANGE = f"{MIN_INSTANT:%Y-%m-%dT%H:%M:%S} to {MAX_INSTANT:%Y-%m-%dT%H:%M:%S} (UTC)"
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")

# RFC 7807 ``type`` links as ASP.NET Core writes them.
_PROBLEM_TYPES: dict[int, str] = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    405: "https://tools.ietf.org/html/rfc7231#section-6.5.5",
    413: "https://tools.ietf.org/html/rfc7231#section-6.5.11",
    415: "https://tools.ietf.org/html/rfc7231#section-6.5.13",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc7231#section-6.6.1",
}
_VALIDATION_TITLE = "One or more validation errors occurred."


# ------------------------------------------------------------------------------ errors


class _ProblemJSON(JSON):
    media_type = "application/problem+json"


def ekran_error(err: ApiError, request: Request) -> Response:
    """Shape an error as an ASP.NET Core problem details document (RFC 7807).

    ``{"type", "title", "status", "detail"}``; a bad parameter adds ``"errors": {name: [msg]}``.
    """
    status = err.status
    title = _VALIDATION_TITLE if err.problems else _phrase(status)
    body: dict[str, Any] = {
        "type": _PROBLEM_TYPES.get(status, _PROBLEM_TYPES[500 if status >= 500 else 400]),
        "title": title,
        "status": status,
        "detail": err.message,
    }
    if err.problems:
        errors: dict[str, list[str]] = {}
        for p in err.problems:
            errors.setdefault(str(p["field"]), []).append(str(p["message"]))
        body["errors"] = errors
    return _ProblemJSON(body, status_code=status, headers=err.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _bad(param: str, message: str) -> ApiError:
    text = f"{param}: {message}"
    return ApiError(400, "bad_request", text, problems=[{"field": param, "message": text}])


# ------------------------------------------------------------------------------ auth


def ekran_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency: the project of the ``ApiKey`` header's API key, or a 401."""
    key = request.headers.get("apikey", "").strip()
    challenge = {"WWW-Authenticate": "ApiKey"}
    if not key:
        raise ApiError(
            401, "unauthorized", "ApiKey: header is required (a project API key)", headers=challenge
        )
    project = project_for_key(ctx, key, "read")
    if project is None:
        raise ApiError(401, "unauthorized", "ApiKey: not a valid API key", headers=challenge)
    note_project(request, project.id)
    return project


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True, slots=True)
class SessionsQuery:
    """The parameters of a sessions request, parsed."""

    start: datetime | None = None
    end: datetime | None = None
    session_count: int = DEFAULT_SESSION_COUNT
    page_index: int = 0


def parse_time(value: object, param: str) -> datetime | None:
    """Parse one of the vendor's three time forms as UTC; None when absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(param, f"must be a string; {_TIME_HELP}")
    for pattern, fmt in _TIME_FORMATS:
        if pattern.fullmatch(value):
            try:
                instant = datetime.strptime(value, fmt).replace(tzinfo=UTC)
            except ValueError:
                raise _bad(param, f"is not a valid date or time: {value[:40]!r}") from None
            if not MIN_INSTANT <= instant <= MAX_INSTANT:
                raise _bad(param, f"must be from {_TIME_RANGE}, not {value[:40]!r}")
            return instant
    raise _bad(param, f"{value[:40]!r} is not a supported format; {_TIME_HELP}")


def _int(value: object, param: str, lo: int, hi: int, default: int) -> int:
    if value is None or value == "":
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not lo <= number <= hi:
        shown = value[:20] if isinstance(value, str) else orjson.dumps(value).decode()[:20]
        raise _bad(param, f"must be an integer from {lo} to {hi}, not {shown!r}")
    return number


def _window(params: Mapping[str, object]) -> tuple[datetime | None, datetime | None]:
    start = parse_time(params.get("start"), "start")
    end = parse_time(params.get("end"), "end")
    if start is not None and end is not None and end < start:
        raise _bad("end", "must not be before start")
    return start, end


def parse_sessions_query(
    query: Mapping[str, object], body: Mapping[str, object] | None = None
) -> SessionsQuery:
    """Parse ``start``, ``end``, ``sessionCount`` and ``pageIndex``.

    Names are case-insensitive; a parameter in the JSON ``body`` wins over the same parameter in
    the ``query`` string; parameters that are not the vendor's are ignored.
    """
    params = {k.lower(): v for k, v in query.items()}
    params.update({k.lower(): v for k, v in (body or {}).items()})
    start, end = _window(params)
    return SessionsQuery(
        start=start,
        end=end,
        session_count=_int(
            params.get("sessioncount"),
            "sessionCount",
            0,
            MAX_SESSION_COUNT,
            DEFAULT_SESSION_COUNT,
        ),
        page_index=_int(params.get("pageindex"), "pageIndex", 0, _INT32_MAX, 0),
    )


#: The parameters fit in far less; a larger body is refused (413) unread.
_MAX_BODY = 64 * 1024


def _query(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.query_params.multi_items()}


async def _json_body(request: Request) -> dict[str, object]:
    """Dependency: the request's JSON object body, ``{}`` when empty (any content type)."""
    raw = await read_body(request, _MAX_BODY)
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("body", "is not valid JSON") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _bad("body", 'must be a JSON object such as {"sessionCount": 100}')
    return doc


# ------------------------------------------------------------------------------ formatting


def format_timespan(ms: int) -> str:
    """Format milliseconds as a .NET TimeSpan: ``hh:mm:ss.fffffff``, ``d.`` from one day on."""
    sign = "-" if ms < 0 else ""
    days, rest = divmod(abs(ms), 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis * 10_000:07d}"
    return f"{sign}{days}.{clock}" if days else f"{sign}{clock}"


def format_date(t: datetime | None) -> str | None:
    """Format an instant as ``2000-01-23T04:56:07.000+00:00`` (UTC); None stays None."""
    if t is None:
        return None
    return f"{_iso(t)}.{t.microsecond // 1000:03d}+00:00"


def _iso(t: datetime) -> str:
    """Format an instant as ``2000-01-23T04:56:07`` (UTC), the year always in four digits."""
    return utc_clock(t)


def session_to_dict(s: DesktopSession) -> dict[str, Any]:
    """One session of ``POST /ekranapi/sessions``, keys in the vendor's order."""
    return {
        "duration": format_timespan(s.duration_ms),
        "idleTime": format_timespan(s.idle_ms),
        "productivityTime": format_timespan(s.productive_ms),
        "clientGuid": s.client_guid,
        "clientName": s.client_name,
        "logoutDate": format_date(s.logout),
        "loginDate": format_date(s.login),
        "sessionId": s.session,
        "userName": s.user_name,
        "userId": s.user_id,
    }


def short_session_to_dict(s: DesktopSession) -> dict[str, Any]:
    """One session of ``GET /ekranapi/sessions``, keys in the vendor's order."""
    return {
        "clientGuid": s.client_guid,
        "logoutDate": format_date(s.logout),
        "loginDate": format_date(s.login),
        "sessionId": s.session,
        "userId": s.user_id,
    }


def productivity_to_dict(row: UserActivity) -> dict[str, Any]:
    """One row of ``getproductivity``: the day, active minutes, user name and hour of day."""
    day = row.bucket.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = row.active_ms / 60_000
    return {
        "date": format_date(day),
        # A .NET double prints without a fraction when it has none (6, not 6.0).
        "totalMinutes": int(minutes) if minutes.is_integer() else minutes,
        "userName": row.user_name,
        "timeOfDay": row.bucket.astimezone(UTC).hour,
    }


# ------------------------------------------------------------------------------ routes


@router.post("/ekranapi/sessions")
def post_sessions(
    request: Request,
    project: Project = Depends(ekran_project),
    body: dict[str, object] = Depends(_json_body),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Sessions with duration, idle and productive time, one page of ``sessionCount``."""
    q = parse_sessions_query(_query(request), body)
    found = ctx.service.desktop_sessions(project, start=q.start, end=q.end)
    first = q.page_index * q.session_count
    page = found[first : first + q.session_count] if first < len(found) else []
    return JSON({"sessions": [session_to_dict(s) for s in page], "totalCount": len(found)})


@router.get("/ekranapi/sessions")
def get_sessions(
    request: Request,
    project: Project = Depends(ekran_project),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Every matching session in the short form (client, login, logout, session and user id)."""
    start, end = _window(_query(request))
    found = ctx.service.desktop_sessions(project, start=start, end=end)
    return JSON([short_session_to_dict(s) for s in found])


@router.get("/ekranapi/user/getproductivity")
def get_productivity(
    request: Request,
    project: Project = Depends(ekran_project),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Active minutes per user during each hour of each day (UTC)."""
    start, end = _window(_query(request))
    rows = ctx.service.desktop_activity(project, start=start, end=end)
    return JSON([productivity_to_dict(r) for r in rows])


def install(app: FastAPI) -> None:
    """Add the Ekran routes to ``app`` and shape their errors as problem details."""
    app.include_router(router)
    register_error_shape(PREFIX, ekran_error)


# ------------------------------------------------------------------------------ demo


def _demo_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the Ekran API: a few curls over yesterday with the demo API key."""
    ekran = f"-H 'ApiKey: {creds['api_key']}'"
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    return [
        "Ekran System (desktop sessions), docs/compat/ekran.md:",
        f"  curl -s {ekran} -H 'Content-Type: application/json' "
        f'-d \'{{"start":"{day}","sessionCount":5}}\' \'{base}/ekranapi/sessions\'',
        f"  curl -s {ekran} '{base}/ekranapi/sessions?start={day}'",
        f"  curl -s {ekran} '{base}/ekranapi/user/getproductivity?start={day}'",
    ]


DEMO = DemoHooks(_demo_help)

#: What this API adds to the core (registered by ``compat/__init__``).
VENDOR = Vendor("ekran", install, demo=DEMO)
