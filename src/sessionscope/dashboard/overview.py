"""The overview page: a time window and one section per kind the project has data of.

Every number comes from the core (``SessionService`` and the store's channel and event reads),
one call per chart; this module only picks the window and shapes values for the templates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Cell,
    Chart,
    Kpi,
    Layer,
    Mark,
    Series,
    Span,
    Table,
    TimeAxis,
    bar_chart,
    epoch_ms,
    line_chart,
    timeline_chart,
)
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS
from sessionscope.domain.timerange import (
    TimeRangeError,
    auto_interval,
    floor_time,
    parse_instant,
)
from sessionscope.service import CURRENT_WINDOW, SessionService

__all__ = [
    "DEFAULT_RANGE",
    "KIND_TITLES",
    "RANGES",
    "Overview",
    "Section",
    "Window",
    "build_overview",
    "example_curl",
    "example_event",
    "explorer_url",
    "form_value",
    "parse_window",
    "session_url",
    "utc_now",
]

#: The preset ranges of the range picker, ending now.
RANGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_RANGE = "24h"
#: Longest custom range (daily points: about 400 of them).
MAX_SPAN = timedelta(days=400)

KIND_TITLES = {
    "player": "Video players",
    "channel": "Live channels",
    "desktop": "Desktop activity",
    "endpoint": "Web endpoints",
}

#: What to send for a kind, shown while a project has none of its events.
SEND_HINTS = {
    "player": "player events (player_start, startup, playing, rebuffering, error, ...) with "
    "session, user (a uuid), device and video_type",
    "channel": "channel events (PUBLISH_START, PUBLISH_END, ONAIR_START, ONAIR_END, ...) with "
    "channel, level and description",
    "desktop": "desktop events (login, activity, logout) with session, user_id and user_name",
    "endpoint": "endpoint page events with session, agent_id, visited_site, protocol, port, "
    "source_addr, page_id, on_load_ms and response_code",
}


@dataclass(frozen=True, slots=True)
class Window:
    """The time window shown: data from ``start`` to ``end`` (both inclusive, UTC), charted
    in ``step`` buckets aligned to the epoch (5-minute marks, or midnight UTC).

    ``until`` is the upper bound people read: now while the window is ``live`` (``end`` is
    now too), else the custom ``to``, left out (``end`` is the millisecond before it). A
    preset is the last ``span / step`` points, the current (incomplete) one included, so
    ``start`` is on a bucket boundary; a custom ``from`` is kept as given, so its first
    bucket may be partial. ``note`` says how the window differs from what was asked.
    """

    key: str
    start: datetime
    end: datetime
    step: timedelta
    until: datetime
    live: bool
    note: str = ""
    #: The custom ``to`` asked for (exclusive), when it was in the future and cut at now.
    asked: datetime | None = None

    @property
    def label(self) -> str:
        if self.key in RANGES:
            return RANGES[self.key][0]
        return f"{fmt.instant(self.start)} to {fmt.instant(self.until)} UTC"

    @property
    def step_label(self) -> str:
        return "day" if self.step >= timedelta(days=1) else "5 minutes"

    @property
    def span(self) -> str:
        """What the window covers, in words: ``2025-10-10 09:00 to 10:00 UTC (1 h)``."""
        length = fmt.duration((self.until - self.start).total_seconds() * 1000)
        return f"{fmt.instant(self.start)} to {fmt.instant(self.until)} UTC ({length})"

    @property
    def points(self) -> str:
        """The chart points in words, saying which ones the window covers only in part."""
        times = self.buckets()
        parts = []
        if self.start > times[0]:
            parts.append(f"the first covers only from {self.start:%H:%M}")
        if self.until < times[-1] + self.step:
            if self.live:
                parts.append("the last one is still in progress")
            else:
                parts.append(f"the last covers only up to {self.until:%H:%M}")
        text = f"{len(times)} points, one per {self.step_label}"
        if parts:
            text += "; " + " and ".join(parts) + " (drawn hollow, on a dotted line)"
        return text

    def buckets(self) -> list[datetime]:
        """The starts of the chart's buckets, oldest first (those the series have)."""
        out: list[datetime] = []
        t = floor_time(self.start, self.step)
        while t <= self.end:
            out.append(t)
            t += self.step
        return out

    def axis(self, times: Sequence[datetime]) -> TimeAxis:
        """The chart axis of the window's buckets ``times``."""
        return TimeAxis(times, self.step, self.start, self.until, self.live)


def parse_window(range_: str | None, from_: str | None, to: str | None, now: datetime) -> Window:
    """Read the range picker's parameters; raise ``TimeRangeError`` naming a bad one."""
    key = range_ or ("custom" if from_ else DEFAULT_RANGE)
    if key in RANGES:
        span = RANGES[key][1]
        step = auto_interval(span)
        start = floor_time(now, step) + step - span
        return Window(key, start, now, step, now, live=True)
    if key != "custom":
        raise TimeRangeError("range", f"must be one of {', '.join(RANGES)} or custom")
    if not from_:
        raise TimeRangeError("from", "is required for a custom range")
    start = parse_instant(from_, "from")
    if start >= now:
        raise TimeRangeError("from", "is in the future: nothing has happened there yet")
    until = _until(to) if to else now
    if until <= start:
        raise TimeRangeError("to", "must be after from")
    note, asked = "", None
    if until > now:
        when = f"{fmt.instant(until)} UTC"
        if to and _DATE_ONLY.match(to.strip()):
            when = f"the end of {to.strip()} (UTC)"
        note = f"The range ends at {when}, in the future: shown up to now."
        until, asked = now, until
    if until - start > MAX_SPAN:
        raise TimeRangeError("from", f"the range may span at most {MAX_SPAN.days} days")
    live = until == now
    end = now if live else until - timedelta(milliseconds=1)
    step = auto_interval(until - start)
    return Window("custom", start, end, step, until, live, note, asked)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def form_value(t: datetime) -> str:
    """An instant as the range form's ``datetime-local`` inputs write it (UTC)."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S" if t.second else "%Y-%m-%dT%H:%M")


def _until(to: str) -> datetime:
    """A custom ``to`` as an exclusive bound: a bare date means the end of that day."""
    at = parse_instant(to, "to")
    last = parse_instant(to, "to", end_of_day=True)
    return last + timedelta(milliseconds=1) if last != at else at


def session_url(kind: str, key: str) -> str:
    """Path of a session's page."""
    return f"/sessions/{kind}/{quote(key, safe='')}"


def explorer_url(kind: str, **filters: str) -> str:
    """Path of the explorer for a kind with filters."""
    return "/sessions?" + urlencode({"kind": kind, **filters})


@dataclass(frozen=True, slots=True)
class Section:
    """One kind's part of the overview."""

    kind: str
    title: str
    kpis: list[Kpi]
    charts: list[Chart]
    tables: list[Table] = field(default_factory=list)
    note: str = ""

    @property
    def explorer(self) -> str:
        return explorer_url(self.kind)


@dataclass(frozen=True, slots=True)
class Overview:
    window: Window
    sections: list[Section]
    #: Kinds without any stored event, with what to send for them.
    missing: list[tuple[str, str]]


#: The sections are built side by side: each waits mostly on its queries, and the engine
#: runs queries from several threads at once.
_BUILDERS = ThreadPoolExecutor(max_workers=len(KINDS), thread_name_prefix="overview")
#: Threads for the independent reads inside a section (never waited on by one of them).
_PARTS = ThreadPoolExecutor(max_workers=6, thread_name_prefix="overview-part")


def build_overview(
    service: SessionService, project: Project, window: Window, now: datetime
) -> Overview:
    """Build every section of the overview for kinds with stored events."""
    kinds = set(service.event_kinds(project))
    builders = {
        "player": _player,
        "channel": _channel,
        "desktop": _desktop,
        "endpoint": _endpoint,
    }
    present = [k for k in KINDS if k in kinds]
    sections = list(_BUILDERS.map(lambda k: builders[k](service, project, window, now), present))
    return Overview(window, sections, [(k, SEND_HINTS[k]) for k in KINDS if k not in kinds])


def _none_when(values: list[Any], present: list[bool]) -> list[Any]:
    """Values where something happened, None elsewhere (a gap, not a misleading zero)."""
    return [v if ok else None for v, ok in zip(values, present, strict=True)]


def _series(
    service: SessionService, project: Project, kind: str, w: Window
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kind's chart points and its totals over the window, in one set of queries."""
    return service.timeseries_with_totals(project, kind, w.start, w.end, w.step)


def _empty_note(total: float, kind: str) -> str:
    return "" if total else f"No {kind} events in this range: try a longer one."


def _more(shown: int, total: int, what: str, where: str) -> str:
    """The note under a capped chart or table: how many rows it leaves out."""
    if total <= shown:
        return ""
    return f"Showing {shown} of {total} {what}; the {total - shown} others are {where}."


def _percent(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} %"


# ------------------------------------------------------------------------------- players


def _player(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
    viewers_now = _PARTS.submit(service.current_viewers, project, now)
    points, totals = _series(service, project, "player", w)
    current = viewers_now.result()
    axis = w.axis([p["time"] for p in points])
    has_sessions = [p["sessions"] > 0 for p in points]
    has_viewers = [p["viewers"] > 0 for p in points]
    minutes = CURRENT_WINDOW.total_seconds() / 60
    kpis = [
        Kpi("Sessions", fmt.integer(totals["sessions"]), "sessions that started in the range"),
        Kpi("Distinct viewers", fmt.integer(totals["viewers"]), "users with any player event"),
        Kpi("Playing time", fmt.duration(totals["playing_time"]), "sum of playing durations"),
        Kpi("Startup time p50", fmt.millis(totals["startup_p50"]), "player + video start"),
        Kpi("Startup time p95", fmt.millis(totals["startup_p95"]), "player + video start"),
        Kpi("Rebuffer ratio", fmt.percent(totals["rebuffer_ratio"]), "stalled / watched time"),
        Kpi("Error rate", fmt.percent(totals["error_rate"]), "sessions with an error"),
        Kpi("Current viewers", fmt.integer(current), f"in the last {minutes:g} minutes"),
    ]

    charts = [
        line_chart(
            "player-playing",
            "Playing time",
            f"Minutes of video played per {w.step_label}.",
            axis,
            [
                Series(
                    "Playing time (min)",
                    [round(p["playing_time"] / 60000, 1) for p in points],
                    text=lambda v: "—" if v is None else f"{v:,.1f} min",
                )
            ],
            y_title="Playing time (minutes)",
            bar=True,
            wide=True,
        ),
        line_chart(
            "player-sessions",
            "Sessions and viewers",
            f"Sessions started and distinct viewers per {w.step_label}.",
            axis,
            [
                Series("Sessions started", [p["sessions"] for p in points]),
                Series("Distinct viewers", [p["viewers"] for p in points]),
            ],
            y_title="Count",
            integer=True,
        ),
        line_chart(
            "player-startup",
            "Startup time",
            "Median (p50) and 95th percentile of startup time of the sessions started in "
            "each interval; no point where no session started.",
            axis,
            [
                Series(
                    "Startup p50 (s)",
                    _none_when([round(p["startup_p50"] / 1000, 3) for p in points], has_sessions),
                    text=lambda v: "—" if v is None else f"{v:.2f} s",
                ),
                Series(
                    "Startup p95 (s)",
                    _none_when([round(p["startup_p95"] / 1000, 3) for p in points], has_sessions),
                    text=lambda v: "—" if v is None else f"{v:.2f} s",
                ),
            ],
            y_title="Startup time (seconds)",
        ),
        line_chart(
            "player-rebuffer",
            "Rebuffer ratio",
            "Share of watch time (playing + rebuffering) spent rebuffering in each interval; "
            "no point where nothing was watched.",
            axis,
            [
                Series(
                    "Rebuffer ratio (%)",
                    _none_when([round(p["rebuffer_ratio"] * 100, 3) for p in points], has_viewers),
                    text=_percent,
                ),
            ],
            y_title="Rebuffer ratio (%)",
        ),
        line_chart(
            "player-errors",
            "Error rate",
            "Share of the sessions started in each interval that had an error; no point where "
            "no session started.",
            axis,
            [
                Series(
                    "Error rate (%)",
                    _none_when([round(p["error_rate"] * 100, 2) for p in points], has_sessions),
                    text=_percent,
                ),
            ],
            y_title="Error rate (%)",
        ),
    ]
    return Section(
        "player",
        KIND_TITLES["player"],
        kpis,
        charts,
        note=_empty_note(totals["sessions"] + totals["viewers"], "player"),
    )


# ------------------------------------------------------------------------------- channels

#: Channels drawn on the publish-period chart, and listed under "Channels now".
CHANNEL_ROWS = 12
CHANNEL_TABLE_ROWS = 20
#: A live channel whose last event is older than this is flagged "no events for ...".
STALE_AFTER = timedelta(hours=1)


#: Recent ERROR events listed (newest first).
ERROR_ROWS = 15


def _status(c: Mapping[str, Any], now: datetime) -> str:
    """A channel's state in words: live (maybe quiet for a while) or off air."""
    if not c["live"]:
        return "○ Off air"
    quiet = now - c["last"]
    if quiet > STALE_AFTER:
        return f"● Live, no events for {fmt.duration(quiet.total_seconds() * 1000)}"
    return "● Live"


def _channel(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
    activity = service.channel_activity(project, w.start, w.end)
    channels, periods = activity.channels, activity.periods
    # The window's events, newest first, give the totals and the latest ERROR events.
    all_errors = [e for e in reversed(activity.events) if e.attrs.get("level") == "ERROR"]
    errors = all_errors[:ERROR_ROWS]
    totals = {"events": len(activity.events), "errors": len(all_errors)}
    live = [c for c in channels if c["live"]]
    kpis = [
        Kpi("Channels", fmt.integer(len(channels)), "channels that ever sent an event"),
        Kpi("Live now", fmt.integer(len(live)), "PUBLISH_START without a later PUBLISH_END"),
        Kpi("Publish periods", fmt.integer(len(periods)), "overlapping the range"),
        Kpi("Events", fmt.integer(totals["events"]), "in the range"),
        Kpi("ERROR events", fmt.integer(totals["errors"]), "in the range"),
    ]
    in_range = {s.channel for s in periods} | {e.session for e in errors}
    # Live channels first, then those that published in the range, then by latest event.
    ordered = sorted(
        channels,
        key=lambda c: (not c["live"], c["channel"] not in in_range, -epoch_ms(c["last"])),
    )
    listed = ordered[:CHANNEL_TABLE_ROWS]
    live_table = Table(
        "Channels now",
        ("Channel", "Status", "Last publish start (UTC)", "Last event (UTC)", "Events", "Errors"),
        [
            (
                Cell(c["channel"], href=explorer_url("channel", channel=c["channel"])),
                Cell(_status(c, now)),
                Cell(fmt.time(c["last_publish_start"])),
                Cell(fmt.time(c["last"])),
                Cell(fmt.integer(c["events"]), num=True),
                Cell(fmt.integer(c["errors"]), num=True),
            )
            for c in listed
        ],
        empty="No channel has sent an event yet.",
        note=_more(len(listed), len(channels), "channels", "in the session explorer"),
    )
    rows = [c["channel"] for c in ordered if c["channel"] in in_range][:CHANNEL_ROWS]
    drawn = set(rows)
    end = min(w.end, now)
    spans: list[Span] = []
    recordings: list[Span] = []
    for s in periods:
        if s.channel not in drawn:
            continue
        url = session_url("channel", s.key)
        lo, hi = max(s.start, w.start), min(s.end or end, w.end)
        state = "live" if s.live else f"ended {fmt.time(s.end)}"
        spans.append(Span(s.channel, lo, max(lo, hi), f"{s.channel}: {state}", url))
        for r in s.recordings:
            rlo, rhi = max(r.start, w.start), min(r.end or s.end or end, w.end)
            if rhi >= rlo:
                recordings.append(Span(s.channel, rlo, rhi, "recording", url))
    error_marks = [
        Mark(e.session, e.time, f"{e.type}: {e.attrs.get('description', '')}")
        for e in errors
        if e.session in drawn
    ]
    chart = timeline_chart(
        "channel-periods",
        "Publish periods",
        "When each channel was publishing (solid bars) and recording (narrower striped bars "
        "on top) in the range, with recent ERROR events (red crosses). Select a bar to open "
        "its session.",
        rows,
        [
            Layer("Publishing", spans=spans),
            Layer("Recording", spans=recordings, style="striped"),
            Layer("ERROR event", marks=error_marks, style="cross"),
        ],
        start=w.start,
        end=end,
        row_title="Channel",
        note=_more(
            len(rows),
            len(in_range),
            "channels active in the range (live ones first)",
            "in the session explorer",
        ),
        wide=True,
    )
    by_channel: dict[str, list[Any]] = {}
    for s in periods:
        by_channel.setdefault(s.channel, []).append(s)

    def period_of(channel: str, t: datetime) -> str:
        for s in by_channel.get(channel, []):
            if s.start <= t and (s.end is None or t <= s.end):
                return session_url("channel", s.key)
        return ""

    errors_table = Table(
        "Recent ERROR events",
        ("Time (UTC)", "Channel", "Event", "Description"),
        [
            (
                Cell(fmt.time(e.time), href=period_of(e.session, e.time)),
                Cell(e.session, href=explorer_url("channel", channel=e.session)),
                Cell(e.type),
                Cell(str(e.attrs.get("description", ""))),
            )
            for e in errors
        ],
        empty="No ERROR events in this range.",
    )
    return Section(
        "channel",
        KIND_TITLES["channel"],
        kpis,
        [chart],
        [live_table, errors_table],
        note=_empty_note(totals["events"] + len(periods), "channel"),
    )


# ------------------------------------------------------------------------------- desktop

#: Users drawn on the per-user chart (most time first).
USER_ROWS = 15


def _hours(ms_value: float | None) -> float | None:
    return None if ms_value is None else round(ms_value / 3_600_000, 2)


def _hours_text(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f} h"


def _desktop(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
    points, totals, breakdown = service.desktop_overview(project, w.start, w.end, w.step)
    users, hours = breakdown["user"], breakdown["hour"]
    worked = totals["idle_time"] + totals["productive_time"]
    kpis = [
        Kpi("Active users", fmt.integer(totals["active_users"]), "with activity in the range"),
        Kpi("Productive time", fmt.duration(totals["productive_time"]), "all users"),
        Kpi("Idle time", fmt.duration(totals["idle_time"]), "gaps over the idle timeout"),
        Kpi(
            "Productive share",
            fmt.percent(totals["productive_time"] / worked if worked else None, 1),
            f"idle timeout {fmt.duration(project.idle_timeout_s * 1000)}",
        ),
    ]
    ranked = sorted(users, key=lambda u: (-(u["productive_ms"] + u["idle_ms"]), u["user"]))
    top = ranked[:USER_ROWS]
    labels = [f"{u['user_name'] or 'user'} (#{u['user']})" for u in top]
    by_hour = {h["hour"]: h for h in hours}
    charts = [
        line_chart(
            "desktop-active",
            "Active users",
            f"Distinct users with desktop activity per {w.step_label}.",
            w.axis([p["time"] for p in points]),
            [Series("Active users", [p["active_users"] for p in points])],
            y_title="Users",
            integer=True,
        ),
        bar_chart(
            "desktop-hours",
            "Productivity by hour of day",
            "Productive and idle hours of all users by hour of day (UTC) over the range.",
            [f"{h:02d}:00" for h in range(24)],
            [
                Series(
                    "Productive (h)",
                    [_hours(by_hour[h]["productive_ms"]) if h in by_hour else 0 for h in range(24)],
                    _hours_text,
                ),
                Series(
                    "Idle (h)",
                    [_hours(by_hour[h]["idle_ms"]) if h in by_hour else 0 for h in range(24)],
                    _hours_text,
                ),
            ],
            x_title="Hour of day (UTC)",
            y_title="Hours",
            stacked=True,
            label_header="Hour (UTC)",
        ),
        bar_chart(
            "desktop-users",
            "Productive and idle time per user",
            "Hours of productive and idle time of each user in the range (stacked), most "
            "time first. Select a bar to see the user's sessions.",
            labels,
            [
                Series("Productive (h)", [_hours(u["productive_ms"]) for u in top], _hours_text),
                Series("Idle (h)", [_hours(u["idle_ms"]) for u in top], _hours_text),
            ],
            x_title="Hours",
            y_title="User",
            horizontal=True,
            stacked=True,
            links=[explorer_url("desktop", user_id=str(u["user"])) for u in top],
            label_header="User",
            note=_more(len(top), len(ranked), "users (most time first)", "in the explorer"),
            wide=True,
        ),
    ]
    return Section(
        "desktop",
        KIND_TITLES["desktop"],
        kpis,
        charts,
        note=_empty_note(totals["active_users"], "desktop"),
    )


# ------------------------------------------------------------------------------- endpoints

#: Sites drawn on the per-site chart (worst score first).
SITE_ROWS = 15


def _endpoint(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
    # One read of the range's pages: per session and per page.
    points, totals, sites, slow = service.endpoint_overview(
        project, w.start, w.end, w.step, slowest=10
    )
    t_ms = project.apdex_threshold_ms
    kpis = [
        Kpi("Sessions", fmt.integer(totals["sessions"]), "first page in the range"),
        Kpi("Pages", fmt.integer(totals["pages"]), "page views"),
        Kpi(
            "Experience score",
            fmt.score(totals["experience_score"] if totals["sessions"] else None),
            f"0 to 1, Apdex-style, T = {fmt.millis(t_ms)}",
        ),
        Kpi("Sites", fmt.integer(len(sites)), "visited in the range"),
    ]
    has = [p["sessions"] > 0 for p in points]
    worst = sites[:SITE_ROWS]
    charts = [
        line_chart(
            "endpoint-score",
            "Experience score over time",
            "Mean experience score (0 to 1) of the sessions whose first page was in each "
            "interval; no point where there was none.",
            w.axis([p["time"] for p in points]),
            [
                Series(
                    "Experience score",
                    _none_when([p["experience_score"] for p in points], has),
                    fmt.score,
                ),
            ],
            y_title="Experience score (0–1)",
            y_max=1,
        ),
        bar_chart(
            "endpoint-sites",
            "Experience score by site",
            "Mean experience score (0 to 1) of each visited site's sessions, worst first. "
            "Select a bar to see the site's sessions.",
            [s["site"] for s in worst],
            [Series("Experience score", [s["experience_score"] for s in worst], fmt.score)],
            x_title="Experience score (0–1)",
            y_title="Site",
            horizontal=True,
            y_max=1,
            links=[explorer_url("endpoint", visited_site=s["site"]) for s in worst],
            label_header="Site",
            note=_more(len(worst), len(sites), "sites (worst first)", "in the explorer"),
        ),
    ]
    slow_table = Table(
        "Slowest pages",
        ("Site", "Page", "Loads", "Median onLoad", "Slowest onLoad", "Mean score", "Slowest load"),
        [
            (
                Cell(p["site"], href=explorer_url("endpoint", visited_site=p["site"])),
                Cell(p["title"] or "(untitled)"),
                Cell(fmt.integer(p["loads"]), num=True),
                Cell(fmt.millis(p["on_load_p50_ms"]), num=True),
                Cell(fmt.millis(p["on_load_max_ms"]), num=True),
                Cell(fmt.score(p["score"]), num=True),
                Cell("open session", href=session_url("endpoint", p["slowest_session"])),
            )
            for p in slow
        ],
        empty="No pages loaded in this range.",
    )
    return Section(
        "endpoint",
        KIND_TITLES["endpoint"],
        kpis,
        charts,
        [slow_table],
        note=_empty_note(totals["sessions"], "endpoint"),
    )


# ------------------------------------------------------------------------------- empty states

_EXAMPLE_USER = "ad5aea06-fb78-41c7-b2ad-716b685e32db"
_EXAMPLE_AGENT = "0f8fad5b-d9cb-469f-a165-70867728950e"


def example_event(kind: str, now: datetime) -> dict[str, Any]:
    """A valid event of ``kind`` that happened at ``now``: sent to a fresh project, it shows
    up in every preset range at once."""
    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    events: dict[str, dict[str, Any]] = {
        "player": {
            "type": "startup",
            "duration_ms": 352,
            "session": "s-1",
            "user": _EXAMPLE_USER,
            "device": "PC",
            "video_type": "VOD",
        },
        "channel": {"type": "PUBLISH_START", "channel": "ch-1", "description": "started"},
        "desktop": {
            "type": "login",
            "session": 1,
            "user_id": 7,
            "user_name": "alice",
            "client_name": "WS-01",
        },
        "endpoint": {
            "type": "page",
            "session": "e-1",
            "agent_id": _EXAMPLE_AGENT,
            "visited_site": "example.com",
            "protocol": "https",
            "port": 443,
            "source_addr": "192.0.2.10",
            "page_id": "p-1",
            "title": "Home",
            "on_load_ms": 850,
            "response_code": 200,
        },
    }
    return {"kind": kind, "time": at, **events[kind]}


def example_curl(kind: str, now: datetime, base_url: str) -> str:
    """A ``curl`` line that sends ``example_event(kind, now)`` to this server."""
    fields = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in example_event(kind, now).items()]
    lines, line = [], ""
    for f in fields:
        if line and len(line) + len(f) > 84:
            lines.append(line + ",")
            line = ""
        line = f"{line},{f}" if line else f
    lines.append(line)
    body = "\n       ".join(lines)
    return (
        "curl -s -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\\n"
        f"  -d '{{{body}}}' \\\n"
        f"  {base_url}/api/v1/events"
    )


def utc_now() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)
