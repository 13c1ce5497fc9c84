"""What every overview section shares: its shape, a pool for its reads, value helpers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sessionscope.dashboard.charts import (
    Chart,
    Kpi,
    Table,
)
from sessionscope.dashboard.window import Window, explorer_url
from sessionscope.domain.accounts import Project
from sessionscope.service import SessionService

__all__ = ["PARTS", "Section", "empty_note", "kind_series", "more_note", "none_when", "percent"]


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


#: Threads for the independent reads inside a section (never waited on by one of them).
PARTS = ThreadPoolExecutor(max_workers=6, thread_name_prefix="overview-part")


def none_when(values: list[Any], present: list[bool]) -> list[Any]:
    """Values where something happened, None elsewhere (a gap, not a misleading zero)."""
    return [v if ok else None for v, ok in zip(values, present, strict=True)]


def kind_series(
    service: SessionService, project: Project, kind: str, w: Window
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kind's chart points and its totals over the window, in one set of queries."""
    return service.timeseries_with_totals(project, kind, w.start, w.end, w.step)


def empty_note(total: float, kind: str) -> str:
    return "" if total else f"No {kind} events in this range: try a longer one."


def more_note(shown: int, total: int, what: str, where: str) -> str:
    """The note under a capped chart or table: how many rows it leaves out."""
    if total <= shown:
        return ""
    return f"Showing {shown} of {total} {what}; the {total - shown} others are {where}."


def percent(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} %"
