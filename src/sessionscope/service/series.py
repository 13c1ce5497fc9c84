"""Time series of each kind's metrics, totals over a range and the overview's breakdowns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS
from sessionscope.domain.sessions import (
    PLAYER_ERROR_TYPES,
    PLAYER_PLAYING_TYPES,
    PLAYER_REBUFFER_TYPES,
    PLAYER_START_TYPES,
)
from sessionscope.domain.timerange import floor_time
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.engine import ms

__all__ = ["CURRENT_WINDOW", "METRICS", "SeriesQueries"]

#: How recent a player event must be for its user to count as a current viewer.
CURRENT_WINDOW = timedelta(minutes=5)

#: Time-series metrics per kind, with their unit.
METRICS: dict[str, dict[str, str]] = {
    "player": {
        "sessions": "sessions",
        "viewers": "users",
        "playing_time": "ms",
        "startup_p50": "ms",
        "startup_p95": "ms",
        "rebuffer_ratio": "ratio",
        "error_rate": "ratio",
    },
    "desktop": {
        "active_users": "users",
        "idle_time": "ms",
        "productive_time": "ms",
    },
    "endpoint": {
        "sessions": "sessions",
        "pages": "pages",
        "experience_score": "score",
    },
    "channel": {
        "events": "events",
        "errors": "events",
    },
}


class SeriesQueries:
    """Metrics of a project per time bucket, over a range, and broken down."""

    store: ClickHouseStore

    def timeseries(
        self,
        project: Project,
        kind: str,
        start: datetime,
        end: datetime,
        step: timedelta,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Every metric of a kind per bucket: ``[{"time": t, metric: value, ...}, ...]``.

        A point's ``time`` is the start of its bucket, a multiple of ``step`` since the epoch,
        so the first bucket may begin before ``start``; every point counts only what happened
        in ``[start, end]`` (data before ``start`` is never counted). Every bucket of the range
        is present (zero where nothing happened), oldest first. ``filters`` (player only:
        ``device``, ``video_type``, ``user``) keep the sessions and events that match any of
        the values.
        """
        if filters and kind != "player":
            raise ValueError("time-series filters are supported for player series only")
        raw = self._raw_series(project, kind, start, end, int(step.total_seconds()), filters)
        return _fill(list(METRICS[kind]), raw, floor_time(start, step), end, step)

    def timeseries_with_totals(
        self, project: Project, kind: str, start: datetime, end: datetime, step: timedelta
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``timeseries``, and every metric over ``[start, end]`` (as ``totals`` counts them)
        from the same queries."""
        raw = self._raw_series(project, kind, start, end, int(step.total_seconds()), total=True)
        return _series_and_totals(kind, raw, start, end, step)

    def _raw_series(
        self,
        project: Project,
        kind: str,
        lo: datetime,
        hi: datetime,
        step_s: int,
        filters: Mapping[str, Sequence[str]] | None = None,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        if kind == "player":
            return self.store.player_series(
                project.id,
                lo,
                hi,
                step_s,
                start_types=PLAYER_START_TYPES,
                playing_types=PLAYER_PLAYING_TYPES,
                rebuffer_types=PLAYER_REBUFFER_TYPES,
                error_types=PLAYER_ERROR_TYPES,
                filters=filters,
                total=total,
            )
        if kind == "desktop":
            return self.store.desktop_series(
                project.id,
                lo,
                hi,
                step_s,
                idle_timeout_ms=project.idle_timeout_s * 1000,
                total=total,
            )
        if kind == "endpoint":
            return self.store.endpoint_series(
                project.id, lo, hi, step_s, threshold_ms=project.apdex_threshold_ms, total=total
            )
        return self.store.channel_series(project.id, lo, hi, step_s, total=total)

    def totals(self, project: Project, kind: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Every metric of a kind over the whole of ``[start, end]``, as one bucket of the series.

        Counts of distinct things (viewers, active users) are distinct over the range, and
        quantiles and ratios are over the range, not sums or means of buckets.
        """
        raw = self._raw_series(project, kind, start, end, self.store.WHOLE_RANGE_STEP_S)
        values = raw.get(0, {})
        return {n: values.get(n, 0) for n in METRICS[kind]}

    def current_viewers(
        self, project: Project, now: datetime, window: timedelta = CURRENT_WINDOW
    ) -> int:
        """Distinct users with a player event in the last ``window`` (``playing`` is reported
        every 60 s while a video plays, so a viewer watching now has one)."""
        return self.store.distinct_users(project.id, "player", now - window, now)

    def active_players(
        self,
        project: Project,
        start: datetime,
        end: datetime,
        step: timedelta = timedelta(minutes=1),
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Players with activity per bucket: ``[{"time": t, "players": n}, ...]``, oldest first.

        ``players`` is the number of distinct player sessions with at least one event in the
        bucket that is inside ``[start, end]`` (one user watching in two tabs is two players).
        Buckets are labelled and filled like ``timeseries``; ``filters`` (``device``,
        ``video_type``, ``user``) keep the events that match any of the values.
        """
        counts = self.store.player_activity(
            project.id, start, end, int(step.total_seconds()), filters=filters
        )
        return _fill(["players"], counts, floor_time(start, step), end, step)

    def event_kinds(self, project: Project) -> list[str]:
        """Kinds the project has received events of."""
        return self.store.event_kinds(project.id)

    def desktop_breakdown(
        self, project: Project, start: datetime, end: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """Idle and productive time in ``[start, end]`` per user (``"user"``) and per hour of
        day in UTC (``"hour"``), with the project's idle timeout, in one query."""
        return self.store.desktop_breakdown(
            project.id, start, end, idle_timeout_ms=project.idle_timeout_s * 1000
        )

    def desktop_overview(
        self, project: Project, start: datetime, end: datetime, step: timedelta
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """``timeseries_with_totals`` and ``desktop_breakdown`` of desktops, in one query."""
        raw, breakdown = self.store.desktop_overview(
            project.id,
            start,
            end,
            int(step.total_seconds()),
            idle_timeout_ms=project.idle_timeout_s * 1000,
        )
        return (*_series_and_totals("desktop", raw, start, end, step), breakdown)

    def endpoint_overview(
        self, project: Project, start: datetime, end: datetime, step: timedelta, slowest: int = 10
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """``timeseries_with_totals``, ``endpoint_sites`` and ``slowest_pages`` of endpoints,
        in one query."""
        raw, sites, pages = self.store.endpoint_overview(
            project.id,
            start,
            end,
            int(step.total_seconds()),
            threshold_ms=project.apdex_threshold_ms,
            slowest=slowest,
        )
        return (*_series_and_totals("endpoint", raw, start, end, step), sites, pages)

    def endpoint_sites(
        self, project: Project, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """Endpoint sessions, pages and experience score per visited site, worst first."""
        return self.store.endpoint_sites(
            project.id, start, end, threshold_ms=project.apdex_threshold_ms
        )

    def slowest_pages(
        self, project: Project, start: datetime, end: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Endpoint pages (site and title) by median onLoad, slowest first."""
        return self.store.slowest_pages(
            project.id, start, end, threshold_ms=project.apdex_threshold_ms, limit=limit
        )


def _series_and_totals(
    kind: str,
    raw: Mapping[int, Mapping[str, float]],
    start: datetime,
    end: datetime,
    step: timedelta,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A kind's filled series and its totals from raw buckets holding the totals at 0."""
    names = list(METRICS[kind])
    values = raw.get(0, {})
    series = _fill(names, raw, floor_time(start, step), end, step)
    return series, {n: values.get(n, 0) for n in names}


def _fill(
    names: Sequence[str],
    raw: Mapping[int, Mapping[str, float]],
    lo: datetime,
    hi: datetime,
    step: timedelta,
) -> list[dict[str, Any]]:
    """Every bucket from ``lo`` to ``hi``, zero where the store had nothing."""
    empty = dict.fromkeys(names, 0)
    out: list[dict[str, Any]] = []
    t = lo
    while t <= hi:
        values = raw.get(ms(t), empty)
        out.append({"time": t, **{n: values.get(n, 0) for n in names}})
        t += step
    return out


assert set(METRICS) == set(KINDS)
