"""Chart and table values the templates render; ``static/dashboard.js`` draws the charts.

A chart is a JSON spec (what to draw, axis titles with units) plus the same numbers as a table,
so every chart can be read as text too. Times cross to the browser as epoch milliseconds (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sessionscope.dashboard import format as fmt

__all__ = [
    "Cell",
    "Chart",
    "Kpi",
    "Table",
    "bar_chart",
    "epoch_ms",
    "line_chart",
    "timeline_chart",
]


def epoch_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(t.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: its text, an optional link, and whether it is a number (right-aligned)."""

    text: str
    href: str = ""
    num: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A table with a caption: header texts and rows of cells."""

    caption: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]
    #: Shown instead of an empty table.
    empty: str = "Nothing in this range."


@dataclass(frozen=True, slots=True)
class Kpi:
    """A headline number: label, formatted value and an optional explanation."""

    label: str
    value: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: ``spec`` for the browser, ``table`` with the same numbers as text."""

    id: str
    title: str
    description: str
    spec: dict[str, Any]
    table: Table
    height: int = 260
    points: int = field(default=0)


def _chart_id(name: str) -> str:
    return f"chart-{name}"


@dataclass(frozen=True, slots=True)
class Series:
    """One line or bar series: a label, its values (None where undefined) and how to write them."""

    label: str
    values: Sequence[float | None]
    text: Any = fmt.integer


def line_chart(
    name: str,
    title: str,
    description: str,
    times: Sequence[datetime],
    step: timedelta,
    series: Sequence[Series],
    *,
    y_title: str,
    y_max: float | None = None,
    bar: bool = False,
) -> Chart:
    """A chart over time buckets (lines, or bars with ``bar``); x labels are bucket starts."""
    labels = [fmt.bucket_label(t, step) for t in times]
    titles = [fmt.bucket_title(t, step) for t in times]
    spec: dict[str, Any] = {
        "type": "bar" if bar else "line",
        "over_time": True,
        "labels": labels,
        "titles": titles,
        "x": {"title": "Time (UTC)" if step < timedelta(days=1) else "Day (UTC)"},
        "y": {"title": y_title, "min": 0, "max": y_max},
        "datasets": [{"label": s.label, "data": list(s.values)} for s in series],
    }
    rows = [
        (Cell(titles[i]), *(Cell(s.text(s.values[i]), num=True) for s in series))
        for i in range(len(times))
    ]
    table = Table(title, ("Time", *(s.label for s in series)), rows)
    points = sum(1 for s in series for v in s.values if v is not None)
    return Chart(_chart_id(name), title, description, spec, table, points=points)


def bar_chart(
    name: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_title: str,
    y_title: str,
    horizontal: bool = False,
    stacked: bool = False,
    y_max: float | None = None,
    links: Sequence[str] | None = None,
    label_header: str = "",
) -> Chart:
    """Bars per category (e.g. per user, hour or site); ``links`` open a page per bar."""
    spec: dict[str, Any] = {
        "type": "hbar" if horizontal else "bar",
        "labels": list(labels),
        "titles": list(labels),
        "x": {"title": x_title},
        "y": {"title": y_title, "min": 0, "max": y_max, "stacked": stacked},
        "datasets": [{"label": s.label, "data": list(s.values)} for s in series],
        "links": list(links or []),
    }
    rows = [
        (
            Cell(label, href=links[i] if links else ""),
            *(Cell(s.text(s.values[i]), num=True) for s in series),
        )
        for i, label in enumerate(labels)
    ]
    table = Table(title, (label_header or x_title, *(s.label for s in series)), rows)
    points = sum(1 for s in series for v in s.values if v is not None)
    height = max(220, 28 * len(labels) + 90) if horizontal else 260
    return Chart(_chart_id(name), title, description, spec, table, height=height, points=points)


@dataclass(frozen=True, slots=True)
class Span:
    """A bar from ``start`` to ``end`` on a timeline row; ``href`` opens a page."""

    row: str
    start: datetime
    end: datetime
    note: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True)
class Mark:
    """An instant on a timeline row."""

    row: str
    at: datetime
    note: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True)
class Layer:
    """One legend entry of a timeline: its spans or marks."""

    label: str
    spans: Sequence[Span] = ()
    marks: Sequence[Mark] = ()
    #: How to draw it besides colour: ``striped`` spans, ``cross`` marks; else by position.
    style: str = ""


def timeline_chart(
    name: str,
    title: str,
    description: str,
    rows: Sequence[str],
    layers: Sequence[Layer],
    *,
    start: datetime,
    end: datetime,
    row_title: str,
) -> Chart:
    """Periods and instants on a time axis, one row per ``rows`` entry (e.g. per channel)."""
    datasets: list[dict[str, Any]] = []
    table_rows: list[tuple[Cell, ...]] = []
    for layer in layers:
        if layer.spans:
            datasets.append(
                {
                    "label": layer.label,
                    "kind": "span",
                    "style": layer.style,
                    "data": [
                        {
                            "x": [epoch_ms(s.start), epoch_ms(s.end)],
                            "y": s.row,
                            "note": s.note,
                            "url": s.href,
                        }
                        for s in layer.spans
                    ],
                }
            )
            table_rows += [
                (
                    Cell(s.row, href=s.href),
                    Cell(layer.label),
                    Cell(fmt.time(s.start)),
                    Cell(fmt.time(s.end)),
                    Cell(fmt.duration((s.end - s.start).total_seconds() * 1000), num=True),
                    Cell(s.note),
                )
                for s in layer.spans
            ]
        if layer.marks:
            datasets.append(
                {
                    "label": layer.label,
                    "kind": "mark",
                    "style": layer.style,
                    "data": [
                        {"x": epoch_ms(m.at), "y": m.row, "note": m.note, "url": m.href}
                        for m in layer.marks
                    ],
                }
            )
            table_rows += [
                (
                    Cell(m.row, href=m.href),
                    Cell(layer.label),
                    Cell(fmt.time(m.at)),
                    Cell(""),
                    Cell(""),
                    Cell(m.note),
                )
                for m in layer.marks
            ]
    table_rows.sort(key=lambda r: (r[2].text, r[0].text))
    spec: dict[str, Any] = {
        "type": "timeline",
        "rows": list(rows),
        "xmin": epoch_ms(start),
        "xmax": epoch_ms(end),
        "x": {"title": "Time (UTC)"},
        "y": {"title": row_title},
        "datasets": datasets,
    }
    table = Table(
        title, (row_title, "What", "From / at (UTC)", "To (UTC)", "Duration", "Note"), table_rows
    )
    points = sum(len(d["data"]) for d in datasets)
    height = max(160, 34 * len(rows) + 110)
    return Chart(_chart_id(name), title, description, spec, table, height=height, points=points)
