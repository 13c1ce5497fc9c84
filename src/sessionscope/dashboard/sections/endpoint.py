"""The overview's web endpoint section."""

from __future__ import annotations

from datetime import datetime

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    Cell,
    Kpi,
    Series,
    Table,
    bar_chart,
    line_chart,
)
from sessionscope.dashboard.kinds import KIND_TITLES
from sessionscope.dashboard.sections.common import Section, empty_note, more_note, none_when
from sessionscope.dashboard.window import Window, explorer_url, session_url
from sessionscope.domain.accounts import Project
from sessionscope.service import SessionService

__all__ = ["SITE_ROWS", "endpoint_section"]

# ------------------------------------------------------------------------------- endpoints

#: Sites drawn on the per-site chart (worst score first).
SITE_ROWS = 15


def endpoint_section(
    service: SessionService, project: Project, w: Window, now: datetime
) -> Section:
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
                    none_when([p["experience_score"] for p in points], has),
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
            note=more_note(len(worst), len(sites), "sites (worst first)", "in the explorer"),
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
        note=empty_note(totals["sessions"], "endpoint"),
    )
