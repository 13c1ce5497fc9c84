"""The overview's live channel section."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Cell,
    Kpi,
    Layer,
    Mark,
    Span,
    Table,
    epoch_ms,
    timeline_chart,
)
from sessionscope.dashboard.kinds import KIND_TITLES
from sessionscope.dashboard.sections.common import Section, empty_note, more_note
from sessionscope.dashboard.window import Window, explorer_url, session_url
from sessionscope.domain.accounts import Project
from sessionscope.service import SessionService

__all__ = ["CHANNEL_ROWS", "CHANNEL_TABLE_ROWS", "ERROR_ROWS", "STALE_AFTER", "channel_section"]

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


def channel_section(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
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
        note=more_note(len(listed), len(channels), "channels", "in the session explorer"),
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
        note=more_note(
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
        note=empty_note(totals["events"] + len(periods), "channel"),
    )
