"""Chart and table values the templates render; ``static/dashboard.js`` draws the charts.

A chart is a JSON spec (what to draw, axis titles with units) plus the same numbers as a table,
so every chart can be read as text too. Times cross to the browser as epoch milliseconds (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from sessionscope.dashboard import format as fmt

__all__ = [
    "Cell",
    "Chart",
    "Kpi",
    "Layer",
    "Mark",
    "Series",
    "Span",
    "Table",
    "TimeAxis",
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
    """One table cell: its text, an optional link, and whether it is a number (right-aligned).
    With ``more``, the text is the summary of a disclosure that opens to those lines."""

    text: str
    href: str = ""
    num: bool = False
    more: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Table:
    """A table with a caption: header texts and rows of cells."""

    caption: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]
    #: Shown instead of an empty table.
    empty: str = "Nothing in this range."
    #: Shown under the table, e.g. that only the first rows are listed.
    note: str = ""

    def body_html(self) -> Markup:
        """The rows as HTML, every text escaped. Written here rather than in the template:
        a chart's table has a row per point, and the template's loop was most of the time a
        page took to render (the overview's tables hold thousands of cells)."""
        out: list[str] = []
        for row in self.rows:
            cells: list[str] = []
            for c in row:
                inner = escape(c.text)
                if c.href:
                    inner = Markup(f'<a href="{escape(c.href)}">{inner}</a>')
                if c.more:
                    items = "".join(f"<li>{escape(line)}</li>" for line in c.more)
                    inner = Markup(
                        f'<details class="run"><summary>{inner}</summary><ul>{items}</ul></details>'
                    )
                cells.append(f'<td class="num">{inner}</td>' if c.num else f"<td>{inner}</td>")
            out.append(f"<tr>{''.join(cells)}</tr>")
        return Markup("\n".join(out))


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
    #: Shown under the chart's description, e.g. that only the top rows are drawn.
    note: str = ""
    #: Take a whole row of the chart grid (wide time axes, long label lists).
    wide: bool = False


def _chart_id(name: str) -> str:
    return f"chart-{name}"


@dataclass(frozen=True, slots=True)
class Series:
    """One line or bar series: a label, its values (None where undefined) and how to write them."""

    label: str
    values: Sequence[float | None]
    text: Any = fmt.integer


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """The buckets of a chart over time: their starts, their length, and the span they cover.

    ``start`` and ``until`` bound the data (``until`` exclusive, or now while ``live``): the
    first bucket is partial when ``start`` is inside it, the last one when ``until`` is.
    """

    times: Sequence[datetime]
    step: timedelta
    start: datetime
    until: datetime
    live: bool = False

    def partial(self) -> list[int]:
        """Indices of the buckets the span covers only in part."""
        out: list[int] = []
        if self.times and self.start > self.times[0]:
            out.append(0)
        last = len(self.times) - 1
        if last >= 0 and self.until < self.times[last] + self.step and last not in out:
            out.append(last)
        return out

    def title(self, i: int, partial: Sequence[int] | None = None) -> str:
        """The bucket's name for tooltips and tables, saying when it is only partly covered
        (``partial``: the axis's ``partial()``, when already known)."""
        t = self.times[i]
        name = fmt.bucket_title(t, self.step)
        if i not in (self.partial() if partial is None else partial):
            return name
        daily = self.step >= timedelta(days=1)
        clock = "%H:%M" if daily else "%H:%M:%S"
        parts = []
        if i == 0 and self.start > t:
            parts.append(f"from {self.start.astimezone(UTC):{clock}}")
        if self.until < t + self.step:
            until = self.until.astimezone(UTC)
            parts.append(f"so far, to {until:{clock}}" if self.live else f"to {until:{clock}}")
        return f"{name} ({', '.join(parts)})"


def line_chart(
    name: str,
    title: str,
    description: str,
    axis: TimeAxis,
    series: Sequence[Series],
    *,
    y_title: str,
    y_max: float | None = None,
    bar: bool = False,
    integer: bool = False,
    wide: bool = False,
) -> Chart:
    """A chart over time buckets (lines, or bars with ``bar``); x labels are bucket starts.

    Buckets the range covers only in part (the current one, or a custom range's first and
    last) are marked: hollow points on dotted lines (pale bars), named so in tooltips and the
    table.
    ``integer`` keeps the value axis on whole numbers (counts of users or sessions).
    """
    times = axis.times
    partial = axis.partial()
    titles = [axis.title(i, partial) for i in range(len(times))]
    spec: dict[str, Any] = {
        "type": "bar" if bar else "line",
        "over_time": True,
        "labels": [fmt.bucket_label(t, axis.step) for t in times],
        "times": [epoch_ms(t) for t in times],
        "step": int(axis.step.total_seconds() * 1000),
        "titles": titles,
        "partial": partial,
        "x": {"title": "Time (UTC)" if axis.step < timedelta(days=1) else "Day (UTC)"},
        "y": {"title": y_title, "min": 0, "max": y_max, "integer": integer},
        "datasets": [{"label": s.label, "data": list(s.values)} for s in series],
    }
    rows = [
        (Cell(titles[i]), *(Cell(s.text(s.values[i]), num=True) for s in series))
        for i in range(len(times))
    ]
    table = Table(title, ("Time", *(s.label for s in series)), rows)
    points = sum(1 for s in series for v in s.values if v is not None)
    return Chart(_chart_id(name), title, description, spec, table, points=points, wide=wide)


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
    note: str = "",
    wide: bool = False,
) -> Chart:
    """Bars per category (e.g. per user, hour or site); ``links`` open a page per bar.

    Horizontal bars grow the chart by a row per label: callers cap long lists (top N) and
    say so in ``note``.
    """
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
    table = Table(title, (label_header or x_title, *(s.label for s in series)), rows, note=note)
    points = sum(1 for s in series for v in s.values if v is not None)
    height = max(220, 28 * len(labels) + 90) if horizontal else 260
    return Chart(
        _chart_id(name),
        title,
        description,
        spec,
        table,
        height=height,
        points=points,
        note=note,
        wide=wide,
    )


@dataclass(frozen=True, slots=True)
class Span:
    """A bar from ``start`` to ``end`` on a timeline row; ``href`` opens a page."""

    row: str
    start: datetime
    end: datetime
    note: str = ""
    href: str = ""
    #: Written on the bar where it fits (e.g. its duration).
    text: str = ""


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
    #: How to draw it besides colour: ``striped`` spans (drawn over solid ones), ``cross``
    #: marks (errors: a red cross); else solid spans and round or shaped marks.
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
    note: str = "",
    wide: bool = False,
) -> Chart:
    """Periods and instants on a time axis, one row per ``rows`` entry (e.g. per channel).

    The axis spans exactly ``[start, end]``. Callers cap long row lists and say so in ``note``.
    """
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
                            "text": s.text,
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
        title,
        (row_title, "What", "From / at (UTC)", "To (UTC)", "Duration", "Note"),
        table_rows,
        note=note,
    )
    points = sum(len(d["data"]) for d in datasets)
    height = max(160, 34 * len(rows) + 110)
    return Chart(
        _chart_id(name),
        title,
        description,
        spec,
        table,
        height=height,
        points=points,
        note=note,
        wide=wide,
    )
