"""The routes: the list of user sessions, one user session, anything else under ``/v6``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError
from sessionscope.compat.thousandeyes.access import (
    _authenticate,
    _authorize,
    _count,
    _organization_key,
)
from sessionscope.compat.thousandeyes.constants import (
    _LIST_PATH,
    _LIST_PATHS,
    _MAX_BODY,
    _ROUND,
    _SESSION_ID,
    _STATE_HEADERS,
    _SUFFIXES,
    PAGE_SIZE,
    PREFIX,
)
from sessionscope.compat.thousandeyes.formats import _bad, _format, _render, _suffix
from sessionscope.compat.thousandeyes.params import (
    _core_filters,
    _cursor,
    _given_range,
    _last_round,
    _page,
    _parse_filters,
)
from sessionscope.compat.thousandeyes.shapes import (
    _date,
    _session,
    _url_time,
    _with_pages,
    round_id,
)
from sessionscope.domain.timerange import (
    MAX_INSTANT,
    MIN_INSTANT,
)
from sessionscope.service import encode_cursor

router = APIRouter(tags=["ThousandEyes v6 (compatible)"])

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
    found = ctx.service.endpoint_sessions_stored(
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
    for s, committed in ctx.service.endpoint_sessions_stored(
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
