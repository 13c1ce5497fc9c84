"""The overview's desktop activity section."""

from __future__ import annotations

from datetime import datetime

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Kpi,
    Series,
    bar_chart,
    line_chart,
)
from sessionscope.dashboard.kinds import KIND_TITLES
from sessionscope.dashboard.sections.common import Section, empty_note, more_note
from sessionscope.dashboard.window import Window, explorer_url
from sessionscope.domain.accounts import Project
from sessionscope.service import SessionService

__all__ = ["USER_ROWS", "desktop_section"]

# ------------------------------------------------------------------------------- desktop

#: Users drawn on the per-user chart (most time first).
USER_ROWS = 15


def _hours(ms_value: float | None) -> float | None:
    return None if ms_value is None else round(ms_value / 3_600_000, 2)


def _hours_text(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f} h"


def desktop_section(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
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
            note=more_note(len(top), len(ranked), "users (most time first)", "in the explorer"),
            wide=True,
        ),
    ]
    return Section(
        "desktop",
        KIND_TITLES["desktop"],
        kpis,
        charts,
        note=empty_note(totals["active_users"], "desktop"),
    )
