"""ThousandEyes API v6, endpoint user sessions: a drop-in compatible API.

``GET``/``POST /v6/endpoint-data/user-sessions`` (also with ``.json`` and ``.xml``) lists the
endpoint sessions of an account group (a project) in a time range, page by page, filtered by a
``searchFilters`` body; ``GET /v6/endpoint-data/user-sessions/{userSessionId}`` answers one
session with its pages. Users authenticate with HTTP Basic ``email:token`` or a bearer token
(``sessionscope users create``); requests are rate limited per organisation.

This module only translates: it parses ThousandEyes' parameters, asks the session service for
endpoint sessions (metrics, scores and orgName rules live in the core), and shapes the answers
and errors the way ThousandEyes does, in JSON or XML. Decisions taken where the vendor is silent
are listed in ``docs/compat/thousandeyes.md``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError, register_error_shape
from sessionscope.api.responses import JSON
from sessionscope.domain.accounts import Project, User
from sessionscope.domain.network import PrefixTable, with_org_name
from sessionscope.domain.sessions import EndpointPage, EndpointSession
from sessionscope.domain.timerange import (
    MAX_INSTANT,
    MIN_INSTANT,
    TimeRangeError,
    floor_time,
    parse_instant,
    parse_window,
    utc_clock,
)
from sessionscope.service import CursorError, decode_cursor, encode_cursor

__all__ = [
    "FILTER_KEYS",
    "PAGE_SIZE",
    "PREFIX",
    "OrganizationRateLimiter",
    "RateDecision",
    "install",
    "round_id",
    "router",
    "thousandeyes_error",
    "user_session_id",
]

router = APIRouter(tags=["ThousandEyes v6 (compatible)"])

#: Every path under this prefix answers errors the ThousandEyes way (and is rate limited).
PREFIX = "/v6"
#: Sessions per page; ``pages.next`` links to the next page while more remain.
PAGE_SIZE = 100
#: ThousandEyes ``searchFilters`` keys and the core's endpoint session filters they map to.
FILTER_KEYS: dict[str, str] = {
    "agentId": "agent_id",
    "visitedSite": "visited_site",
    "domain": "domain",
    "protocol": "protocol",
    "port": "port",
    "sourceAddr": "source_addr",
}
#: ThousandEyes keys of user sessions that this server has no data for.
_UNSUPPORTED_KEYS = ("platform", "connection", "location", "networkId")
#: Values compared in lower case (the core stores sites and protocols in lower case).
_LOWER_KEYS = frozenset({"visitedSite", "domain", "protocol"})

_LIST_PATH = "/v6/endpoint-data/user-sessions"
_SUFFIXES = {".json": "json", ".xml": "xml"}
_LIST_PATHS = (_LIST_PATH, *(_LIST_PATH + suffix for suffix in _SUFFIXES))
_MEDIA = {
    "application/json": "json",
    "text/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
}
_CONTENT_TYPES = {"json": "application/json", "xml": "application/xml"}
_FULL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}Z?")
_AID = re.compile(r"[0-9]{1,10}")
_SESSION_ID = re.compile(r"([0-9]{1,10}):([0-9]{1,12}):([0-9A-Za-z]{8})")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROUND = timedelta(minutes=1)
#: ``to`` names a whole second: the range runs to that second's last millisecond.
_LAST_MS = timedelta(milliseconds=999)
_MAX_BODY = 64 * 1024
_MAX_PAGE = 1_000_000
#: XML item element names of list-valued fields.
_XML_ITEMS = {"userSessions": "userSession", "pages": "page"}
#: Characters XML 1.0 cannot carry, even escaped; they are sent as U+FFFD.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_STATE_HEADERS = "thousandeyes_rate_headers"


# ------------------------------------------------------------------------------ formats


def _suffix(path: str) -> str | None:
    for suffix, fmt in _SUFFIXES.items():
        if path.endswith(suffix):
            return fmt
    return None


def _accepted(header: str) -> str | None:
    """The format the ``Accept`` header prefers among JSON and XML (highest q), or None."""
    best: tuple[float, str] | None = None
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        fmt = _MEDIA.get(media.lower())
        if fmt is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, fmt)
    return best[1] if best else None


def _format(request: Request) -> str:
    """The answer's format: the path suffix, then ``Accept``, then ``format=``, then JSON."""
    fmt = _suffix(request.url.path) or _accepted(request.headers.get("accept", ""))
    if fmt is not None:
        return fmt
    value = request.query_params.get("format", "").strip().lower()
    if not value:
        return "json"
    if value not in _CONTENT_TYPES:
        raise _bad("format", f"must be json or xml, not {value[:20]!r}")
    return value


def _error_format(request: Request) -> str:
    try:
        return _format(request)
    except ApiError:
        return "json"


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _xml_element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            element.append(_xml_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_xml_element(_XML_ITEMS.get(tag, "item"), item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _xml_text(str(value))
    return element


def to_xml(root: str, data: Mapping[str, Any]) -> bytes:
    """Render an answer as XML: one element per field, list items named singular."""
    rendered: bytes = ET.tostring(_xml_element(root, data), encoding="utf-8", xml_declaration=True)
    return rendered


def _render(fmt: str, data: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    all_headers = {"Cache-Control": "no-store", **headers}
    if fmt == "xml":
        return Response(to_xml("data", data), 200, all_headers, media_type=_CONTENT_TYPES["xml"])
    return JSON(dict(data), headers=all_headers)


# ------------------------------------------------------------------------------ errors


def thousandeyes_error(err: ApiError, request: Request) -> Response:
    """Shape an error as ThousandEyes does: ``{"errorMessage": ...}`` or its XML twin."""
    headers = {**getattr(request.state, _STATE_HEADERS, {}), **err.headers}
    headers["Cache-Control"] = "no-store"
    if _error_format(request) == "xml":
        body = to_xml("error", {"errorMessage": err.message})
        return Response(body, err.status, headers, media_type=_CONTENT_TYPES["xml"])
    return JSON({"errorMessage": err.message}, status_code=err.status, headers=headers)


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", f"{param}: {message}")


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Basic realm="sessionscope"'}
    )


# ------------------------------------------------------------------------------ rate limit


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request's place in its organisation's window."""

    allowed: bool
    limit: int
    remaining: int
    #: Epoch seconds when the window rolls over.
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Organization-Rate-Limit-Limit": str(self.limit),
            "X-Organization-Rate-Limit-Remaining": str(self.remaining),
            "X-Organization-Rate-Limit-Reset": str(self.reset),
        }


class OrganizationRateLimiter:
    """Fixed windows per key: a window opens at a key's first request and lasts a minute.

    State is in this process: with several servers behind a load balancer, each server
    limits on its own.
    """

    def __init__(self, clock: Callable[[], float] = time.time, window_s: float = 60.0) -> None:
        self._clock = clock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def hit(self, key: tuple[str, str], limit: int) -> RateDecision:
        """Count one request of ``key``; say whether it is within ``limit`` for the window."""
        with self._lock:
            now = self._clock()
            start, count = self._windows.get(key, (now, 0))
            if now >= start + self._window_s:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 10_000:
                self._prune(now)
        reset = math.ceil(start + self._window_s)
        return RateDecision(count <= limit, limit, max(0, limit - count), reset)

    def _prune(self, now: float) -> None:
        expired = [k for k, (s, _) in self._windows.items() if now >= s + self._window_s]
        for k in expired:
            del self._windows[k]


def _limiter(request: Request) -> OrganizationRateLimiter:
    limiter = getattr(request.app.state, "thousandeyes_limiter", None)
    if not isinstance(limiter, OrganizationRateLimiter):
        limiter = OrganizationRateLimiter()
        request.app.state.thousandeyes_limiter = limiter
    return limiter


def _count(request: Request, ctx: AppContext, key: tuple[str, str]) -> None:
    """Count the request against ``key``; keep the headers for the answer; 429 beyond."""
    decision = _limiter(request).hit(key, ctx.settings.rate_limit_per_minute)
    setattr(request.state, _STATE_HEADERS, decision.headers())
    if not decision.allowed:
        wait = max(1, decision.reset - int(time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {decision.limit} requests a minute exceeded for the organization; "
            f"retry after X-Organization-Rate-Limit-Reset ({decision.reset})",
            headers={"Retry-After": str(wait)},
        )


# ------------------------------------------------------------------------------ auth


def _user(request: Request, ctx: AppContext) -> User | None:
    """The user of the request's credentials; None when absent; 401 when malformed."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("Authorization: Basic credentials are not base64") from None
        email, sep, token = decoded.partition(":")
        if not sep or not email or not token:
            raise _unauthorized("Authorization: Basic credentials must be email:token")
        return ctx.store.verify_user(email, token)
    if scheme.lower() == "bearer":
        return ctx.store.user_by_token(credentials)
    return None


def _organization_key(ctx: AppContext, user: User, project: Project | None) -> tuple[str, str]:
    """The budget a request of ``user`` about ``project`` counts against.

    It is the organisation of the account group asked about, so that every user and every
    account group of one organisation share one budget; a project without an organisation is
    an organisation of its own, named after the project (as ``projects list`` shows it).
    Without an account group (``aid`` refused, or an unknown path) the user's default account
    group's organisation pays, never the one a refused ``aid`` names.
    """
    if project is None:
        project = ctx.store.get_project(user.project_ids[0]) if user.project_ids else None
    if project is None:
        return ("user", user.email)
    return ("organization", project.organization or project.name)


def _authenticate(request: Request, ctx: AppContext) -> User:
    """Authenticate the request; a failed attempt is counted against the client's address.

    A successful one is counted by :func:`_authorize` once its account group is known.
    """
    try:
        user = _user(request, ctx)
    except ApiError:
        _count(request, ctx, ("address", request.client.host if request.client else ""))
        raise
    if user is None:
        _count(request, ctx, ("address", request.client.host if request.client else ""))
        if request.headers.get("authorization", "").strip():
            raise _unauthorized(
                "Authorization: the email and token (or bearer token) are not valid"
            )
        raise _unauthorized(
            "Authorization: required, as HTTP Basic email:token or 'Bearer <token>' "
            "(make a token with: sessionscope users create EMAIL --project NAME)"
        )
    return user


def _authorize(
    request: Request, ctx: AppContext, user: User, aid: Callable[[], str | None]
) -> Project:
    """Resolve the account group (``aid()``), then count the request against its organisation.

    When ``aid()`` or the account group is refused, the request still counts, against the
    user's default account group, and the refusal carries the rate-limit headers.
    """
    try:
        project = _account_group(ctx, user, aid())
    except ApiError:
        _count(request, ctx, _organization_key(ctx, user, None))
        raise
    _count(request, ctx, _organization_key(ctx, user, project))
    return project


def _account_group(ctx: AppContext, user: User, aid: str | None) -> Project:
    """The project ``aid`` names (400 when invalid, 403 when not the user's), or the default."""
    if aid is None or not aid.strip():
        project_id = user.project_ids[0] if user.project_ids else 0
        project = ctx.store.get_project(project_id) if project_id else None
        if project is None:
            raise ApiError(403, "forbidden", "aid: the user has no account group")
        return project
    text = aid.strip()
    if not _AID.fullmatch(text):
        raise _bad("aid", f"must be the numeric id of an account group, not {text[:20]!r}")
    project_id = int(text)
    project = ctx.store.get_project(project_id) if project_id < 2**32 else None
    if project is None:
        raise _bad("aid", f"there is no account group {project_id}")
    if project_id not in user.project_ids:
        raise ApiError(
            403, "forbidden", f"aid: the user is not assigned to account group {project_id}"
        )
    return project


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True, slots=True)
class _Range:
    start: datetime
    #: Inclusive, to the millisecond.
    end: datetime
    #: The range as the client gave it (``from``/``to`` echoed in the answer), or the round.
    given: bool


def _time(text: str, param: str) -> datetime:
    value = text.strip()
    if not _FULL_TIME.fullmatch(value):
        raise _bad(param, f"must be a full UTC date and time YYYY-mm-ddTHH:MM:SS, not {value!r}")
    try:  # also refuses instants outside [MIN_INSTANT, MAX_INSTANT]
        return parse_instant(value, param)
    except TimeRangeError as exc:
        raise _bad(exc.param, exc.message) from None


def _given_range(query: Mapping[str, str], now: datetime) -> _Range | None:
    """The range of ``window`` or ``from``/``to``; None when the request names none."""
    window, start_text, end_text = (query.get(k) for k in ("window", "from", "to"))
    if window is not None and (start_text is not None or end_text is not None):
        raise _bad("window", "cannot be combined with from or to")
    if end_text is not None and start_text is None:
        raise _bad("to", "needs from (to alone is not a range)")
    # Whole seconds: the range can be written into the next page's URL exactly.
    to_second = now.replace(microsecond=0)
    if window is not None:
        try:
            span = parse_window(window, "window")
        except TimeRangeError as exc:
            raise _bad(exc.param, exc.message) from None
        # A window reaching before the epoch starts there: from= of the next URL must parse.
        return _Range(max(to_second - span, MIN_INSTANT), to_second + _LAST_MS, True)
    if start_text is None:
        return None
    start = _time(start_text, "from")
    end = _time(end_text, "to") if end_text is not None else to_second
    if end < start:
        if end_text is None:
            raise _bad("from", "must not be in the future when to is not given")
        raise _bad("to", "must not be before from")
    return _Range(start, end + _LAST_MS, True)


def _last_round(ctx: AppContext, project: Project) -> _Range | None:
    """The newest round (minute) with at least one session of the account group."""
    newest = ctx.service.newest_session_start(project, "endpoint")
    if newest is None:
        return None
    start = floor_time(newest, _ROUND)
    return _Range(start, start + _ROUND - timedelta(milliseconds=1), False)


def _filter_values(key: str, values: object) -> list[str]:
    if not isinstance(values, list) or not values:
        raise _bad("searchFilters", f"{key}: values must be a non-empty array")
    out: list[str] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _bad("searchFilters", f"{key}: every value must be a string")
        text = str(value).strip()
        if key == "port" and not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
            raise _bad("searchFilters", f"port: {text[:20]!r} is not a port number")
        out.append(text.lower() if key in _LOWER_KEYS else text)
    return out


def _search_filters(document: object, source: str) -> list[tuple[str, list[str]]]:
    """Parse ``{"searchFilters": [{"key": ..., "values": [...]}, ...]}`` (or just the list)."""
    if isinstance(document, dict):
        unknown = sorted(set(document) - {"searchFilters"})
        if unknown:
            raise _bad(source, f"unknown field {unknown[0]!r} (expected searchFilters)")
        document = document.get("searchFilters", [])
    if not isinstance(document, list):
        raise _bad("searchFilters", "must be an array of {key, values} objects")
    out: list[tuple[str, list[str]]] = []
    for item in document:
        if not isinstance(item, dict) or set(item) != {"key", "values"}:
            raise _bad("searchFilters", 'each filter must be {"key": ..., "values": [...]}')
        key = item["key"]
        if key in _UNSUPPORTED_KEYS:
            raise _bad("searchFilters", f"key {key!r} is not supported by this server")
        if not isinstance(key, str) or key not in FILTER_KEYS:
            raise _bad(
                "searchFilters",
                f"unknown key {str(key)[:40]!r} (use {', '.join(FILTER_KEYS)})",
            )
        out.append((key, _filter_values(key, item["values"])))
    return out


def _parse_filters(body: bytes, query: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Filters of the POST body and of the ``searchFilters`` parameter (a next-page URL)."""
    filters: list[tuple[str, list[str]]] = []
    if len(body) > _MAX_BODY:
        raise _bad("body", f"must be at most {_MAX_BODY} bytes")
    if body.strip():
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _bad("body", 'is not JSON (send {"searchFilters": [...]})') from None
        filters += _search_filters(document, "body")
    if query.get("searchFilters"):
        try:
            document = orjson.loads(query["searchFilters"])
        except orjson.JSONDecodeError:
            raise _bad("searchFilters", "the parameter is not JSON") from None
        filters += _search_filters(document, "searchFilters")
    # A client may re-send its body to a next-page URL that carries the same filters.
    unique = {(key, tuple(values)): values for key, values in filters}
    return [(key, values) for (key, _), values in unique.items()]


def _core_filters(filters: Sequence[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """The core's filters: filter objects are ANDed, the values inside one ORed."""
    out: dict[str, list[str]] = {}
    for key, values in filters:
        name = FILTER_KEYS[key]
        if name not in out:
            out[name] = list(dict.fromkeys(values))
        elif name == "domain":
            raise _bad("searchFilters", "give domain once (its values are ORed)")
        else:  # the same key twice: a session has one value, so both must hold it
            out[name] = [v for v in out[name] if v in values]
    return out


def _page(query: Mapping[str, str]) -> int:
    text = query.get("page", "").strip()
    if not text:
        return 1
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_PAGE:
        raise _bad("page", f"must be an integer from 1 to {_MAX_PAGE}, not {text[:20]!r}")
    return int(text)


def _cursor(query: Mapping[str, str]) -> tuple[datetime, str] | None:
    text = query.get("cursor", "").strip()
    if not text:
        return None
    try:
        return decode_cursor(text)
    except CursorError as exc:
        raise _bad("cursor", str(exc)) from None


# ------------------------------------------------------------------------------ shapes


def round_id(t: datetime) -> int:
    """Return the round of an instant: epoch seconds of its minute."""
    return int(floor_time(t, _ROUND).timestamp())


def user_session_id(project_id: int, round_: int, session: str) -> str:
    """Return ``<aid, 5 digits>:<roundId>:<8 letters and digits>`` for a session.

    The 8 characters are the first 8 bytes of SHA-256 over ``"<aid>:<session key>"`` written
    in base 62: the same session always has the same id, so the id can be looked up.
    """
    digest = int.from_bytes(hashlib.sha256(f"{project_id}:{session}".encode()).digest()[:8])
    chars = []
    for _ in range(8):
        digest, rest = divmod(digest, 62)
        chars.append(_BASE62[rest])
    return f"{project_id:05d}:{round_}:{''.join(chars)}"


def _clock(t: datetime, sep: str) -> str:
    return utc_clock(t, sep)


def _date(t: datetime) -> str:
    return _clock(t, " ")


def _url_time(t: datetime) -> str:
    return _clock(t, "T")


def _har_time(t: datetime) -> str:
    return f"{_clock(t, 'T')}.{t.microsecond // 1000:03d}Z"


@functools.lru_cache(maxsize=8)
def _prefix_table(items: tuple[tuple[str, str], ...]) -> PrefixTable:
    return PrefixTable.parse(dict(items))


def _session(
    ctx: AppContext, project: Project, s: EndpointSession, committed: datetime
) -> dict[str, Any]:
    s = with_org_name(s, _prefix_table(tuple(sorted(ctx.settings.org_prefixes.items()))))
    rid = round_id(s.date)
    return {
        "agentId": s.agent_id,
        "committed": _date(committed),
        "date": _date(s.date),
        "experienceScore": s.experience_score,
        "numberOfPages": s.number_of_pages,
        "orgName": s.org_name,
        "pageId": s.pages[0].page_id if s.pages else "",
        "permalink": f"{ctx.settings.base_url}/projects/{project.id}/sessions/endpoint/"
        f"{quote(s.session, safe='')}",
        "port": s.port,
        "protocol": s.protocol,
        "roundId": rid,
        "sourceAddr": s.source_addr,
        "userSessionId": user_session_id(project.id, rid, s.session),
        "visitedSite": s.visited_site,
    }


def _page_item(p: EndpointPage) -> dict[str, Any]:
    return {
        "id": p.page_id,
        "title": p.title,
        "startedDateTime": _har_time(p.time),
        "responseCode": p.response_code,
        "pageTimings": {"onContentLoad": p.on_content_load_ms, "onLoad": p.on_load_ms},
    }


def _with_pages(item: dict[str, Any], s: EndpointSession) -> dict[str, Any]:
    """The list entry with the session's pages, keys in the same (alphabetical) order."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "permalink":
            out["pages"] = [_page_item(p) for p in s.pages]
        out[key] = value
    return out


# ------------------------------------------------------------------------------ routes


def _list(request: Request, ctx: AppContext, body: bytes) -> Response:
    user = _authenticate(request, ctx)
    query = request.query_params
    project = _authorize(request, ctx, user, lambda: query.get("aid"))
    fmt = _format(request)
    filters = _parse_filters(body, query)
    now = datetime.now(UTC)
    window = _given_range(query, now) or _last_round(ctx, project)
    page, after = _page(query), _cursor(query)
    headers = getattr(request.state, _STATE_HEADERS, {})
    if window is None:
        return _render(fmt, {"userSessions": [], "pages": {"current": page}}, headers=headers)
    found = ctx.service.endpoint_sessions_committed(
        project,
        start=window.start,
        end=window.end,
        filters=_core_filters(filters),
        limit=PAGE_SIZE + 1,
        after=after,
        offset=0 if after is not None else (page - 1) * PAGE_SIZE,
    )
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    pages: dict[str, Any] = {"current": page}
    if more:
        last = found[-1][0]
        params = [
            ("from", _url_time(window.start)),
            ("to", _url_time(window.end)),
            ("aid", str(project.id)),
        ]
        if filters:
            document = [{"key": k, "values": v} for k, v in filters]
            params.append(("searchFilters", orjson.dumps(document).decode()))
        if _suffix(request.url.path) is None:
            params.append(("format", fmt))
        params += [("page", str(page + 1)), ("cursor", encode_cursor(last.date, last.session))]
        pages["next"] = f"{ctx.settings.base_url}{request.url.path}?{urlencode(params)}"
    data: dict[str, Any] = {}
    if window.given:
        data["from"] = _date(window.start)
        data["to"] = _date(window.end)
    data["userSessions"] = [_session(ctx, project, s, c) for s, c in found]
    data["pages"] = pages
    return _render(fmt, data, headers=headers)


async def user_sessions(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """List endpoint user sessions (the last round by default), one page at a time."""
    body = b""
    if request.method == "POST":
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # read to the end, keep at most the limit
            size += len(chunk)
            if size <= _MAX_BODY:
                chunks.append(chunk)
        body = b"".join(chunks) if size <= _MAX_BODY else b" " * (_MAX_BODY + 1)
    return await run_in_threadpool(_list, request, ctx, body)


for _path in _LIST_PATHS:
    for _method in ("GET", "POST"):
        router.add_api_route(
            _path,
            user_sessions,
            methods=[_method],
            name=f"thousandeyes_user_sessions{_path[len(_LIST_PATH) :]}",
        )


def _session_id(ident: str) -> tuple[str, int]:
    """The aid and roundId of a ``userSessionId``; 400 when malformed or its round cannot be."""
    match = _SESSION_ID.fullmatch(ident)
    if match is None:
        raise _bad("userSessionId", f"must look like 07625:1490529480:aVDViw0i, not {ident[:60]!r}")
    rid = int(match.group(2))
    first, last = round_id(MIN_INSTANT), round_id(MAX_INSTANT)
    if not first <= rid <= last:
        raise _bad(
            "userSessionId",
            f"roundId {rid} is outside the rounds this server has "
            f"(epoch seconds from {first} to {last})",
        )
    return match.group(1), rid


@router.get(_LIST_PATH + "/{user_session:path}")
def user_session(
    request: Request, user_session: str, ctx: AppContext = Depends(get_ctx)
) -> Response:
    """One endpoint user session with its pages."""
    user = _authenticate(request, ctx)
    ident = user_session
    for suffix in _SUFFIXES:
        ident = ident.removesuffix(suffix)

    def aid() -> str | None:
        return request.query_params.get("aid") or _session_id(ident)[0]

    project = _authorize(request, ctx, user, aid)
    fmt = _format(request)
    id_aid, rid = _session_id(ident)
    if int(id_aid) != project.id:
        raise ApiError(
            404, "not_found", f"userSessionId: {ident} is not in account group {project.id}"
        )
    start = datetime.fromtimestamp(rid, tz=UTC)
    for s, committed in ctx.service.endpoint_sessions_committed(
        project, start=start, end=start + _ROUND - timedelta(milliseconds=1)
    ):
        item = _session(ctx, project, s, committed)
        if item["userSessionId"] == ident:
            headers = getattr(request.state, _STATE_HEADERS, {})
            return _render(fmt, {"userSessions": [_with_pages(item, s)]}, headers=headers)
    raise ApiError(404, "not_found", f"userSessionId: no user session {ident}")


@router.api_route(
    PREFIX + "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def other(request: Request, rest: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Anything else under ``/v6``: authenticated and counted like the rest, then 404 or 405."""
    user = _authenticate(request, ctx)
    _count(request, ctx, _organization_key(ctx, user, None))
    path = request.url.path
    allowed = None
    if path in _LIST_PATHS:
        allowed = "GET, POST"
    elif path.startswith(_LIST_PATH + "/"):
        allowed = "GET"
    if allowed is not None:
        raise ApiError(
            405,
            "method_not_allowed",
            f"method {request.method} is not allowed on {path}",
            headers={"Allow": allowed},
        )
    raise ApiError(404, "not_found", f"no such endpoint: {path} (this server has {_LIST_PATH})")


def install(app: FastAPI) -> None:
    """Add the ThousandEyes routes to ``app`` and shape their errors the ThousandEyes way."""
    app.state.thousandeyes_limiter = OrganizationRateLimiter()
    app.include_router(router)
    register_error_shape(PREFIX, thousandeyes_error)
