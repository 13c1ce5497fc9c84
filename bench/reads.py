"""The read requests measured: what is asked, how it is authenticated, and its target.

The same list drives both sides: the HTTP clients against the server, and the engine baseline,
which serves each request once in-process to record the SQL it runs and then times that SQL
alone. A request whose route does not exist (yet) is reported as not available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["AUTH_TABLES", "Read", "auth_headers", "pages", "reads"]

#: Queries on these tables authenticate a request; the baseline leaves them out (it times the
#: data work only, so the ratio shows everything sessionscope adds, checking the key included).
AUTH_TABLES = ("FROM projects", "FROM api_keys", "FROM users")


@dataclass(frozen=True, slots=True)
class Read:
    """One read request; ``follow`` pages: time the pages reached through ``next`` instead."""

    name: str
    title: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    #: ``bearer`` (native), ``vpe`` (NAVER's x-api-key / x-project-id) or ``cookie`` (dashboard).
    auth: str = "bearer"
    #: Target for the p50 latency in milliseconds, when the issue sets one.
    target_p50_ms: float | None = None
    follow: int = 0


def reads(end: datetime, cursor_pages: int) -> list[Read]:
    """The read requests of a run over a store whose newest data is at ``end``."""
    day_before = (end - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    last = end.strftime("%Y-%m-%d %H:%M:%S")
    listing = {"kind": "player", "limit": "50"}
    return [
        Read(
            "sessions_list",
            "`GET /api/v1/sessions?kind=player&limit=50`",
            "/api/v1/sessions",
            listing,
            target_p50_ms=25,
        ),
        Read(
            "sessions_list_filtered",
            "the same, filtered `&device=Mobile&video_type=LIVE`",
            "/api/v1/sessions",
            {**listing, "device": "Mobile", "video_type": "LIVE"},
            target_p50_ms=25,
        ),
        Read(
            "sessions_list_cursor",
            f"the same, following `next` (pages 2 to {cursor_pages + 1})",
            "/api/v1/sessions",
            listing,
            target_p50_ms=25,
            follow=cursor_pages,
        ),
        Read(
            "naver_session_recent",
            "`GET /v1/sessionRecent` (NAVER-compatible, last day of data, limit 100)",
            "/v1/sessionRecent",
            {"startDate": day_before, "endDate": last},
            auth="vpe",
        ),
        Read(
            "dashboard_overview",
            "dashboard `/` (overview), server-side render",
            "/",
            auth="cookie",
            target_p50_ms=300,
        ),
        Read(
            "dashboard_sessions",
            "dashboard `/sessions` (explorer), server-side render",
            "/sessions",
            auth="cookie",
            target_p50_ms=300,
        ),
    ]


def auth_headers(read: Read, data_dir: Path, project_id: int, api_key: str) -> dict[str, str]:
    """The headers that authenticate ``read`` for the project; empty when impossible."""
    if read.auth == "bearer":
        return {"Authorization": f"Bearer {api_key}"}
    if read.auth == "vpe":
        return {"x-api-key": api_key, "x-project-id": str(project_id)}
    try:
        from sessionscope.config import load_settings
        from sessionscope.dashboard.auth import COOKIE, SignIn, encode_cookie
        from sessionscope.security import split_api_key
    except ImportError:
        return {}
    parts = split_api_key(api_key)
    if parts is None:
        return {}
    settings = load_settings(data_dir=data_dir)
    cookie = encode_cookie(settings, SignIn(project_id, "key", parts[0]))
    return {"Cookie": f"{COOKIE}={cookie}"}


def pages(http: Any, read: Read, headers: dict[str, str]) -> list[dict[str, str]] | str:
    """The query parameters of each request timed for ``read``, or why it cannot be measured.

    ``http`` is an httpx client or the app's test client (both answer ``get``). A plain read is
    one request; a ``follow`` read is the pages reached from the first through ``next``.
    """
    if not headers:
        return "cannot sign in (the dashboard's sign-in module is not available)"
    first = http.get(read.path, params=read.params, headers=headers)
    if first.status_code != 200:
        return f"`{read.path}` answered {first.status_code}"
    if not read.follow:
        return [dict(read.params)]
    out: list[dict[str, str]] = []
    nxt = first.json().get("next")
    while nxt and len(out) < read.follow:
        out.append({**read.params, "cursor": nxt})
        nxt = http.get(read.path, params=out[-1], headers=headers).json().get("next")
    return out or "the first page has no `next`"
