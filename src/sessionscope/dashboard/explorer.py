"""The session explorer: one page of a kind's sessions as a table, with the native filters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import Cell, Table
from sessionscope.dashboard.kinds import KIND_TITLES, SEND_HINTS, example_curl
from sessionscope.dashboard.window import session_url
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS
from sessionscope.domain.timerange import TimeRangeError, parse_instant
from sessionscope.service import (
    FILTERS,
    AnySession,
    SessionPage,
    SessionQuery,
    SessionService,
    session_to_dict,
)

__all__ = [
    "PAGE_SIZE",
    "EmptyState",
    "ExplorerQuery",
    "FilterField",
    "empty_state",
    "filter_names",
    "list_page",
    "parse_query",
    "session_table",
]

PAGE_SIZE = 50

_Col = tuple[str, Callable[[Mapping[str, Any]], str], bool]


def _t(name: str) -> Callable[[Mapping[str, Any]], str]:
    def get(d: Mapping[str, Any]) -> str:
        value = d.get(name)
        return value.replace("T", " ")[:19] if isinstance(value, str) else "—"

    return get


def _ms(name: str, how: Callable[[Any], str] = fmt.duration) -> Callable[[Mapping[str, Any]], str]:
    return lambda d: how(d.get(name))


def _s(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda d: "—" if d.get(name) in (None, "") else str(d.get(name))


_COLUMNS: dict[str, list[_Col]] = {
    "player": [
        ("Start (UTC)", _t("start"), False),
        ("User", _s("user"), False),
        ("Device", _s("device"), False),
        ("Video", _s("video_type"), False),
        ("Startup", _ms("total_start_ms", fmt.millis), True),
        ("Playing", _ms("playing_ms"), True),
        ("Rebuffering", _ms("rebuffering_ms"), True),
        ("Rebuffer ratio", lambda d: fmt.percent(d["rebuffer_ratio"]), True),
        ("Errors", _s("errors"), True),
    ],
    "channel": [
        ("Channel", _s("channel"), False),
        ("Start (UTC)", _t("start"), False),
        ("End (UTC)", lambda d: _t("end")(d) if d.get("end") else "live now", False),
        ("Duration", _ms("duration_ms"), True),
        ("Recordings", lambda d: str(len(d["recordings"])), True),
        ("ERROR events", _s("errors"), True),
        ("Events", _s("events"), True),
    ],
    "desktop": [
        ("User", lambda d: f"{d['user_name'] or '—'} (#{d['user_id']})", False),
        ("Client", _s("client_name"), False),
        ("Login (UTC)", _t("login"), False),
        ("Logout (UTC)", lambda d: _t("logout")(d) if d.get("logout") else "open", False),
        ("Duration", _ms("duration_ms"), True),
        ("Productive", _ms("productive_ms"), True),
        ("Idle", _ms("idle_ms"), True),
    ],
    "endpoint": [
        ("Start (UTC)", _t("start"), False),
        ("Site", _s("visited_site"), False),
        ("Agent", _s("agent_id"), False),
        ("Source", _s("source_addr"), False),
        ("Pages", _s("pages"), True),
        ("Experience score", lambda d: fmt.score(d["experience_score"]), True),
    ],
}

_FILTER_LABELS = {
    "device": ("Device", "PC, Mobile"),
    "video_type": ("Video type", "VOD, LIVE"),
    "user": ("User", "user uuid"),
    "channel": ("Channel", "channel id"),
    "user_id": ("User id", "e.g. 7"),
    "agent_id": ("Agent id", "agent uuid"),
    "visited_site": ("Site", "exact, e.g. github.com"),
    "domain": ("Domain", "example.com and its subdomains"),
    "protocol": ("Protocol", "http, https"),
    "port": ("Port", "e.g. 443"),
    "source_addr": ("Source address", "IP address"),
}

#: Filters of the native API the explorer leaves out: desktop's and endpoint's ``user`` are
#: other names of ``user_id`` and ``agent_id`` (the kind's grouping user, ``events.user``).
_ALIASES = {"desktop": ("user",), "endpoint": ("user",)}


def filter_names(kind: str) -> tuple[str, ...]:
    """The filters the explorer offers (and accepts) for a kind."""
    return tuple(n for n in FILTERS[kind] if n not in _ALIASES.get(kind, ()))


@dataclass(frozen=True, slots=True)
class FilterField:
    """One filter input of the explorer form."""

    name: str
    label: str
    hint: str
    value: str

    @property
    def size(self) -> int:
        """The input's width in characters: wide enough for its placeholder, whole."""
        return max(20, len(self.hint) + 3)


@dataclass(frozen=True, slots=True)
class ExplorerQuery:
    """A parsed explorer request (``kind``, range and filters, as the native session list)."""

    kind: str
    start: datetime | None
    end: datetime | None
    filters: dict[str, list[str]]
    cursor: str | None
    raw: dict[str, str]

    def fields(self) -> list[FilterField]:
        return [
            FilterField(n, *_FILTER_LABELS.get(n, (n, "")), self.raw.get(n, ""))
            for n in filter_names(self.kind)
        ]

    @property
    def unfiltered(self) -> bool:
        """No filter, no range and no cursor: the kind's first page of all sessions."""
        return not self.filters and self.start is None and self.end is None and not self.cursor

    def url(self, cursor: str | None = None, **changes: str) -> str:
        """This query's URL, with another cursor (or none) and parameters changed."""
        params = {k: v for k, v in {**self.raw, **changes}.items() if v}
        if cursor:
            params["cursor"] = cursor
        return "/sessions?" + urlencode(params)


_RESERVED = {"kind", "from", "to", "cursor"}


def parse_query(params: Sequence[tuple[str, str]]) -> ExplorerQuery:
    """Read the explorer's query string; raise ``TimeRangeError`` naming a bad parameter."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).extend(v for v in [value.strip()] if v)
    raw = {name: ",".join(vs) for name, vs in values.items()}
    kind = raw.get("kind") or "player"
    if kind not in KINDS:
        raise TimeRangeError("kind", f"must be one of {', '.join(KINDS)}")
    raw["kind"] = kind
    start = parse_instant(raw["from"], "from") if raw.get("from") else None
    end = parse_instant(raw["to"], "to", end_of_day=True) if raw.get("to") else None
    if start is not None and end is not None and end < start:
        raise TimeRangeError("to", "must not be before from")
    filters: dict[str, list[str]] = {}
    for name, value in raw.items():
        if name in _RESERVED or not value:
            continue
        if name not in filter_names(kind):
            allowed = ", ".join(filter_names(kind))
            raise TimeRangeError(name, f"is not a filter of {kind} (use {allowed})")
        filters[name] = [v.strip() for v in value.split(",") if v.strip()]
    raw_out = {k: v for k, v in raw.items() if k != "cursor"}
    return ExplorerQuery(kind, start, end, filters, raw.get("cursor") or None, raw_out)


def session_table(kind: str, sessions: Sequence[AnySession], now: datetime) -> Table:
    """The explorer's table: a link to each session, then the kind's columns."""
    cols = _COLUMNS[kind]
    rows: list[tuple[Cell, ...]] = []
    for s in sessions:
        d = session_to_dict(s, now)
        key = str(d["session"])
        rows.append(
            (
                Cell(key, href=session_url(kind, key)),
                *(Cell(get(d), num=num) for _, get, num in cols),
            )
        )
    return Table(
        f"{KIND_TITLES[kind]}: sessions",
        ("Session", *(c[0] for c in cols)),
        rows,
        empty="No sessions match.",
    )


@dataclass(frozen=True, slots=True)
class EmptyState:
    """What the explorer shows for a kind without sessions: what is missing and what to send."""

    title: str
    text: str
    curl: str = ""


_NO_SESSIONS = {
    "channel": "Channel events have arrived, but no publish period has started yet: a channel "
    "session begins with a PUBLISH_START event and ends with PUBLISH_END.",
}


def empty_state(kind: str, has_events: bool, now: datetime, base_url: str) -> EmptyState:
    """The explorer's empty state for a kind with no session at all (no filter applied)."""
    if has_events:
        text = _NO_SESSIONS.get(
            kind, f"{kind.capitalize()} events have arrived but form no session yet."
        )
        return EmptyState(f"No {kind} sessions yet", text)
    return EmptyState(
        f"No {kind} events yet",
        f"This project has not received any {kind} event. Send {SEND_HINTS[kind]} to "
        f"POST {base_url}/api/v1/events with the header Authorization: Bearer <project API "
        "key>; sessions are listed here as they arrive. For example:",
        example_curl(kind, now, base_url),
    )


def list_page(service: SessionService, project: Project, q: ExplorerQuery) -> SessionPage:
    """One page of sessions for the query (``SessionService.list_sessions``)."""
    return service.list_sessions(
        project, SessionQuery(q.kind, q.start, q.end, q.filters, PAGE_SIZE, q.cursor)
    )
