"""The overview's video player section."""

from __future__ import annotations

from datetime import datetime

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Kpi,
    Series,
    line_chart,
)
from sessionscope.dashboard.kinds import KIND_TITLES
from sessionscope.dashboard.sections.common import (
    PARTS,
    Section,
    empty_note,
    kind_series,
    none_when,
    percent,
)
from sessionscope.dashboard.window import Window
from sessionscope.domain.accounts import Project
from sessionscope.service import CURRENT_WINDOW, SessionService

__all__ = ["player_section"]

# ------------------------------------------------------------------------------- players


def player_section(service: SessionService, project: Project, w: Window, now: datetime) -> Section:
    viewers_now = PARTS.submit(service.current_viewers, project, now)
    points, totals = kind_series(service, project, "player", w)
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
                    none_when([round(p["startup_p50"] / 1000, 3) for p in points], has_sessions),
                    text=lambda v: "—" if v is None else f"{v:.2f} s",
                ),
                Series(
                    "Startup p95 (s)",
                    none_when([round(p["startup_p95"] / 1000, 3) for p in points], has_sessions),
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
                    none_when([round(p["rebuffer_ratio"] * 100, 3) for p in points], has_viewers),
                    text=percent,
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
                    none_when([round(p["error_rate"] * 100, 2) for p in points], has_sessions),
                    text=percent,
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
        note=empty_note(totals["sessions"] + totals["viewers"], "player"),
    )
