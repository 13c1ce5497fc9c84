"""The session page: one session's metrics and a timeline of its events.

Players: one row per action type, each report drawn over the time it covers (reports are
stamped when the action ends, so a ``playing`` report of 60 s covers the minute before it).
Desktop: activity points, productive stretches and idle gaps. Endpoint: each page's load
times against the project's Apdex threshold. Channel: the publish period, its recordings and
its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Cell,
    Chart,
    Layer,
    Mark,
    Series,
    Span,
    Table,
    bar_chart,
    timeline_chart,
)
from sessionscope.dashboard.window import explorer_url
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.domain.sessions import (
    ChannelSession,
    DesktopSession,
    EndpointSession,
    PlayerSession,
)
from sessionscope.service import AnySession

__all__ = ["MAX_EVENT_ROWS", "SessionPage", "build_session_page"]

#: Events listed in the page's table (the timeline shows them all).
MAX_EVENT_ROWS = 1000

_PLAYER_ROWS = ("player_start", "startup", "playing", "paused", "seeking", "rebuffering")
_PLAYER_MARKS = ("error", "ended", "next_track", "prev_track")


@dataclass(frozen=True, slots=True)
class SessionPage:
    """What the session template shows."""

    kind: str
    key: str
    title: str
    facts: list[tuple[str, str, str]]  # label, value, link
    charts: list[Chart]
    events: Table
    more_events: int


def build_session_page(
    project: Project, kind: str, session: AnySession, events: Sequence[Event], now: datetime
) -> SessionPage:
    """Shape one session (from ``SessionService.get_session``) for its page."""
    if isinstance(session, PlayerSession):
        key, title, facts, charts = _player(session, events)
    elif isinstance(session, DesktopSession):
        key, title, facts, charts = _desktop(project, session, events)
    elif isinstance(session, EndpointSession):
        key, title, facts, charts = _endpoint(project, session)
    else:
        key, title, facts, charts = _channel(session, now)
    shown = list(events[:MAX_EVENT_ROWS])
    note = ""
    if kind == "desktop":
        # A working day is hundreds of activity events: one row per run of the same app.
        rows = [_run_row(run) if len(run) > 1 else _event_row(run[0]) for run in _runs(shown)]
        if len(rows) < len(shown):
            note = (
                "Consecutive activity events of the same app are one row (activity that names "
                "no app joins the row it falls in): their count and the time from the first to "
                "the last. Open a row's details to see each event."
            )
    else:
        rows = [_event_row(e) for e in shown]
    table = Table(
        "Events",
        ("Time (UTC)", "Type", "Duration", "Details"),
        rows,
        empty="This session has no events.",
        note=note,
    )
    return SessionPage(kind, key, title, facts, charts, table, len(events) - len(shown))


def _stamp(t: datetime) -> str:
    return fmt.time(t) + f".{t.microsecond // 1000:03d}"


def _event_row(e: Event) -> tuple[Cell, ...]:
    return (
        Cell(_stamp(e.time)),
        Cell(e.type),
        Cell(fmt.duration(e.duration_ms), num=True),
        Cell(_details(e)),
    )


def _runs(events: Sequence[Event]) -> list[list[Event]]:
    """Group consecutive activity events of the same app; any other event is a run of one.
    Activity that names no app joins the activity run before it (as far as anyone knows, that
    app is still in front); after a login it starts a run of its own."""
    runs: list[list[Event]] = []
    app = ""
    for e in events:
        this = str(e.attrs.get("app") or "")
        last = runs[-1] if runs else None
        if (
            e.type == "activity"
            and last is not None
            and last[0].type == "activity"
            and this in ("", app)
        ):
            last.append(e)
        else:
            runs.append([e])
            app = this
    return runs


def _run_row(run: Sequence[Event]) -> tuple[Cell, ...]:
    first, last = run[0], run[-1]
    app = str(first.attrs.get("app") or "")
    titles = list(dict.fromkeys(str(e.attrs["title"]) for e in run if e.attrs.get("title")))
    summary = [f"app={app}" if app else "no app named"]
    if len(titles) == 1:
        summary.append(f"title={titles[0]}")
    elif titles:
        summary.append(f"{len(titles)} titles")
    return (
        Cell(_stamp(first.time)),
        Cell(f"{first.type} × {len(run)}"),
        Cell(fmt.duration(_ms(last.time - first.time)), num=True),
        Cell(
            f"{', '.join(summary)[:200]}; to {_stamp(last.time)[11:]}",
            more=tuple(f"{_stamp(e.time)[11:]} {_details(e) or '(no app named)'}" for e in run),
        ),
    )


_DETAIL_SKIP = {"user_name", "client_guid", "client_name", "origin", "os", "device", "video_type"}


def _details(e: Event) -> str:
    parts = [
        f"{k}={v}" for k, v in e.attrs.items() if k not in _DETAIL_SKIP and v not in ("", None)
    ]
    return ", ".join(parts)[:300]


Built = tuple[str, str, list[tuple[str, str, str]], list[Chart]]


def _ms(d: timedelta) -> int:
    return int(d.total_seconds() * 1000)


def _bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Pad a timeline's range a little so bars at the edges stay visible."""
    pad = max((end - start) * 0.02, timedelta(seconds=1))
    return start - pad, end + pad


# ------------------------------------------------------------------------------- player


def _player(s: PlayerSession, events: Sequence[Event]) -> Built:
    m = s.metrics
    facts = [
        ("User", s.user, explorer_url("player", user=s.user)),
        ("Start (UTC)", fmt.time(s.start), ""),
        ("Last event (UTC)", fmt.time(s.end), ""),
        ("Device", s.device, explorer_url("player", device=s.device)),
        ("Video type", s.video_type, explorer_url("player", video_type=s.video_type)),
        ("OS", s.os or "—", ""),
        ("Origin", s.origin or "—", ""),
        ("Events", fmt.integer(s.events), ""),
        ("Player start time", fmt.millis(m.player_start_ms), ""),
        ("Video start time", fmt.millis(m.video_start_ms), ""),
        ("Total start time", fmt.millis(m.total_start_ms), ""),
        ("Playing time", fmt.duration(m.playing_ms), ""),
        ("Rebuffering time", fmt.duration(m.rebuffering_ms), ""),
        ("Rebuffer ratio", fmt.percent(m.rebuffer_ratio), ""),
        ("Errors", f"{m.errors} ({'error session' if m.is_error else 'no error'})", ""),
    ]
    spans: dict[str, list[Span]] = {}
    marks: dict[str, list[Mark]] = {}
    for e in events:
        if e.duration_ms and e.type in _PLAYER_ROWS:
            begin = e.time - timedelta(milliseconds=e.duration_ms)
            length = fmt.duration(e.duration_ms)
            spans.setdefault(e.type, []).append(
                Span(e.type, begin, e.time, f"{e.type} {length}", text=length)
            )
        else:  # on its type's row too, so a row is labelled as its legend entry is
            marks.setdefault(e.type, []).append(Mark(e.type, e.time, e.type))
    known = (*_PLAYER_ROWS, *_PLAYER_MARKS)
    rows = [t for t in known if t in spans or t in marks]
    rows += [t for t in marks if t not in known]
    layers = [Layer(t, spans=spans[t]) for t in _PLAYER_ROWS if t in spans]
    layers += [
        Layer(t, marks=marks[t], style="cross" if t == "error" else "") for t in known if t in marks
    ]
    layers += [Layer(t, marks=v) for t, v in marks.items() if t not in known]
    first = min((sp.start for v in spans.values() for sp in v), default=s.start)
    lo, hi = _bounds(min(first, s.start), s.end)
    chart = timeline_chart(
        "session-timeline",
        "Player actions",
        "Each event type on its own row; a bar covers the time an action report measured "
        "(reports are sent when the action ends), with its duration where it fits. Errors "
        "are red crosses; ends and track changes are marks.",
        rows,
        layers,
        start=lo,
        end=hi,
        row_title="Action",
    )
    return s.session, f"Player session {s.session}", facts, [chart]


# ------------------------------------------------------------------------------- desktop


def _desktop(project: Project, s: DesktopSession, events: Sequence[Event]) -> Built:
    facts = [
        (
            "User",
            f"{s.user_name or '—'} (#{s.user_id})",
            explorer_url("desktop", user_id=str(s.user_id)),
        ),
        ("Client", f"{s.client_name or '—'} ({s.client_guid or 'no guid'})", ""),
        ("Login (UTC)", fmt.time(s.login), ""),
        ("Logout (UTC)", fmt.time(s.logout) if s.logout else "not logged out yet", ""),
        ("Measured from (UTC)", fmt.time(s.start), ""),
        ("Measured to (UTC)", fmt.time(s.end), ""),
        ("Duration", fmt.duration(s.duration_ms), ""),
        ("Productive time", fmt.duration(s.productive_ms), ""),
        ("Idle time", fmt.duration(s.idle_ms), ""),
        ("Idle gaps", f"{len(s.gaps)} over {fmt.duration(project.idle_timeout_s * 1000)}", ""),
    ]
    productive: list[Span] = []
    cursor = s.start

    def stretch(lo: datetime, hi: datetime) -> Span:
        length = fmt.duration(_ms(hi - lo))
        return Span("work", lo, hi, f"productive {length}", text=length)

    for g in s.gaps:
        if g.start > cursor:
            productive.append(stretch(cursor, g.start))
        cursor = g.end or cursor
    if s.end > cursor:
        productive.append(stretch(cursor, s.end))
    idle = [
        Span(
            "work",
            g.start,
            g.end,
            f"idle {fmt.duration(_ms(g.end - g.start))}",
            text=fmt.duration(_ms(g.end - g.start)),
        )
        for g in s.gaps
        if g.end is not None
    ]
    by_type: dict[str, list[Mark]] = {}
    for e in events:
        note = str(e.attrs.get("app") or e.attrs.get("title") or e.type)
        by_type.setdefault(e.type, []).append(Mark("activity", e.time, note))
    layers = [Layer("Productive", spans=productive), Layer("Idle gap", spans=idle, style="striped")]
    layers += [Layer(t, marks=by_type[t]) for t in ("login", "activity", "logout") if t in by_type]
    lo, hi = _bounds(min(s.login, s.start), max(s.end, s.logout or s.end))
    chart = timeline_chart(
        "session-timeline",
        "Activity and idle gaps",
        "Activity points (login, input, logout) on the upper row; productive stretches and "
        f"idle gaps (no input for over {fmt.duration(project.idle_timeout_s * 1000)}, striped) "
        "on the lower row.",
        ["activity", "work"],
        layers,
        start=lo,
        end=hi,
        row_title="Row",
    )
    return str(s.session), f"Desktop session {s.session}", facts, [chart]


# ------------------------------------------------------------------------------- endpoint


def _endpoint(project: Project, s: EndpointSession) -> Built:
    t_ms = project.apdex_threshold_ms
    facts = [
        ("Agent", s.agent_id, explorer_url("endpoint", agent_id=s.agent_id)),
        ("Site", s.visited_site, explorer_url("endpoint", visited_site=s.visited_site)),
        ("Protocol / port", f"{s.protocol} / {s.port}", ""),
        ("Source address", s.source_addr or "—", ""),
        ("Organisation", s.org_name or "—", ""),
        ("First page (UTC)", fmt.time(s.date), ""),
        ("Last page (UTC)", fmt.time(s.last), ""),
        ("Pages", fmt.integer(s.number_of_pages), ""),
        ("Experience score", f"{fmt.score(s.experience_score)} (T = {fmt.millis(t_ms)})", ""),
    ]
    labels = [
        f"{i}. {p.title or p.page_id} ({p.time.astimezone(UTC):%H:%M:%S})"
        for i, p in enumerate(s.pages, 1)
    ]
    chart = bar_chart(
        "session-pages",
        "Page load times",
        f"onContentLoad and onLoad of each page in ms; pages within T = {t_ms} ms score 1, "
        f"within 4T = {4 * t_ms} ms score 0.5, slower or with an HTTP error 0.",
        labels,
        [
            Series("onContentLoad (ms)", [p.on_content_load_ms for p in s.pages], fmt.millis),
            Series("onLoad (ms)", [p.on_load_ms for p in s.pages], fmt.millis),
        ],
        x_title="Load time (ms)",
        y_title="Page",
        horizontal=True,
        label_header="Page",
    )
    chart.spec["thresholds"] = [
        {"value": t_ms, "label": f"T = {t_ms} ms"},
        {"value": 4 * t_ms, "label": f"4T = {4 * t_ms} ms"},
    ]
    rows = [
        (
            Cell(f"{i}. {p.title or p.page_id}"),
            Cell(fmt.time(p.time)),
            Cell(str(p.response_code), num=True),
            Cell(fmt.millis(p.on_content_load_ms), num=True),
            Cell(fmt.millis(p.on_load_ms), num=True),
            Cell(fmt.score(p.score), num=True),
        )
        for i, p in enumerate(s.pages, 1)
    ]
    headers = ("Page", "Started (UTC)", "HTTP", "onContentLoad", "onLoad", "Score")
    chart = replace(chart, table=Table("Pages", headers, rows))
    return s.session, f"Endpoint session {s.session}", facts, [chart]


# ------------------------------------------------------------------------------- channel


def _channel(s: ChannelSession, now: datetime) -> Built:
    end = s.end or now
    facts = [
        ("Channel", s.channel, explorer_url("channel", channel=s.channel)),
        ("Publish start (UTC)", fmt.time(s.start), ""),
        ("Publish end (UTC)", fmt.time(s.end) if s.end else "live now", ""),
        ("Duration", fmt.duration(s.duration_ms(now)), ""),
        ("Recordings", str(len(s.recordings)), ""),
        ("ERROR events", str(len(s.errors)), ""),
        ("Events", str(len(s.events)), ""),
    ]
    spans = [
        Span(
            "publishing",
            s.start,
            end,
            "live" if s.live else "published",
            text=fmt.duration(s.duration_ms(now)) + (" so far" if s.live else ""),
        )
    ]
    recordings = [
        Span(
            "recording",
            r.start,
            r.end or end,
            "recording",
            text=fmt.duration(_ms((r.end or end) - r.start)),
        )
        for r in s.recordings
    ]
    info = [Mark("events", e.time, e.type) for e in s.events if e.attrs.get("level") != "ERROR"]
    errors = [
        Mark("events", e.time, f"{e.type}: {e.attrs.get('description', '')}") for e in s.errors
    ]
    lo, hi = _bounds(s.start, end)
    chart = timeline_chart(
        "session-timeline",
        "Publish and recording periods",
        "The publish period, its recordings (striped) and its events; ERROR events are red "
        "crosses.",
        ["publishing", "recording", "events"],
        [
            Layer("Publishing", spans=spans),
            Layer("Recording", spans=recordings, style="striped"),
            Layer("INFO event", marks=info),
            Layer("ERROR event", marks=errors, style="cross"),
        ],
        start=lo,
        end=hi,
        row_title="Row",
    )
    return s.key, f"Channel {s.channel}, publish period from {fmt.time(s.start)}", facts, [chart]
