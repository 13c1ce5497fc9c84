"""The core queries every edge uses: sessions of each kind with their metrics, one session with
its events, time series. Native API, CLI, dashboard and compat modules all call this module; it
combines store aggregates (selection, ordering, paging) with the pure definitions of
``domain.sessions`` (metrics) so each rule lives once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS, Event, format_time
from sessionscope.domain.sessions import (
    PLAYER_ERROR_TYPES,
    PLAYER_PLAYING_TYPES,
    PLAYER_REBUFFER_TYPES,
    PLAYER_START_TYPES,
    ChannelSession,
    DesktopSession,
    EndpointSession,
    PlayerSession,
    UserActivity,
    activity_by_user,
    channel_sessions,
    desktop_session,
    endpoint_session,
    player_metrics_from_sums,
)
from sessionscope.domain.timerange import MAX_EPOCH_MS, floor_time
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.engine import ms, to_dt
from sessionscope.store.sessions import SESSION_FILTERS

__all__ = [
    "CURRENT_WINDOW",
    "FILTERS",
    "METRICS",
    "AnySession",
    "ChannelActivity",
    "CursorError",
    "SessionPage",
    "SessionQuery",
    "SessionService",
    "decode_cursor",
    "encode_cursor",
    "session_to_dict",
]

AnySession = PlayerSession | ChannelSession | DesktopSession | EndpointSession

#: Filters of the native session list, per kind.
FILTERS: dict[str, tuple[str, ...]] = {**SESSION_FILTERS, "channel": ("channel",)}

#: How recent a player event must be for its user to count as a current viewer.
CURRENT_WINDOW = timedelta(minutes=5)
#: How far before a window's start a publish period open at it is looked for first.
_OPEN_LOOKBACK = timedelta(days=1)
_PUBLISH_EDGES = ("PUBLISH_START", "PUBLISH_END")

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


class CursorError(ValueError):
    """An opaque cursor that this server did not produce."""


def encode_cursor(start: datetime, key: str) -> str:
    raw = orjson.dumps([ms(start), key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        start_ms, key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(start_ms, int) or not 0 <= start_ms <= MAX_EPOCH_MS:
            raise ValueError("cursor time out of range")
        if not isinstance(key, str) or len(key) > 1024:
            raise ValueError("cursor key is not a session key")
        return to_dt(start_ms), key
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise CursorError("cursor is not one this server produced") from None


@dataclass(frozen=True, slots=True)
class ChannelActivity:
    """Channels over a window: ``channels`` as ``store.channels`` gives them, the publish
    ``periods`` overlapping the window (oldest first) and the window's ``events`` (oldest
    first, each once)."""

    channels: list[dict[str, Any]]
    periods: list[ChannelSession]
    events: list[Event]


def _periods(
    events: Sequence[Event], start: datetime | None, end: datetime | None
) -> list[ChannelSession]:
    """The publish periods of channel events (any channels) overlapping ``[start, end]``."""
    by_channel: dict[str, list[Event]] = {}
    for e in events:
        by_channel.setdefault(e.session, []).append(e)
    out: list[ChannelSession] = []
    for evs in by_channel.values():
        out.extend(s for s in channel_sessions(evs) if _overlaps(s.start, s.end, start, end))
    out.sort(key=lambda s: (s.start, s.key))
    return out


@dataclass(frozen=True, slots=True)
class SessionQuery:
    kind: str
    start: datetime | None = None
    end: datetime | None = None
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    limit: int = 50
    cursor: str | None = None
    #: Desktop only: clip sessions to [start, end] (Ekran semantics).
    clip: bool = False


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[AnySession]
    next: str | None


def session_start(s: AnySession) -> datetime:
    if isinstance(s, DesktopSession):
        return s.login
    if isinstance(s, EndpointSession):
        return s.date
    return s.start


def session_key(s: AnySession) -> str:
    if isinstance(s, ChannelSession):
        return s.key
    return str(s.session)


class SessionService:
    """Sessions and metrics of a project, over one store."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ lists

    def list_sessions(self, project: Project, q: SessionQuery) -> SessionPage:
        """One page of sessions, newest first; ``next`` continues after the last one."""
        before = decode_cursor(q.cursor) if q.cursor else None
        if q.kind == "channel":
            channels = q.filters.get("channel")
            found = self.channel_sessions(project, channels=channels, start=q.start, end=q.end)
            found.sort(key=lambda s: (s.start, s.key), reverse=True)
            if before is not None:
                found = [s for s in found if (s.start, s.key) < before]
            more = len(found) > q.limit
            found = found[: q.limit]
            nxt = encode_cursor(found[-1].start, found[-1].key) if more else None
            return SessionPage(list(found), nxt)
        rows = self.store.session_rows(
            q.kind,
            project.id,
            start=q.start,
            end=q.end,
            filters=q.filters,
            before=before,
            limit=q.limit + 1,
        )
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        # The cursor is the aggregate's own (start, key): what the store orders by.
        nxt = encode_cursor(rows[-1]["start"], str(rows[-1]["session"])) if more else None
        return SessionPage(self._build(project, q.kind, rows, q.start, q.end, q.clip), nxt)

    def _build(
        self,
        project: Project,
        kind: str,
        rows: list[dict[str, Any]],
        start: datetime | None,
        end: datetime | None,
        clip: bool,
    ) -> list[AnySession]:
        if kind == "player":
            return [_player(r) for r in rows]
        events = self.store.session_events(project.id, kind, [str(r["session"]) for r in rows])
        out: list[AnySession] = []
        for r in rows:
            evs = events.get(str(r["session"]), [])
            built: AnySession | None
            if kind == "desktop":
                built = desktop_session(
                    evs,
                    idle_timeout=timedelta(seconds=project.idle_timeout_s),
                    start=start if clip else None,
                    end=end if clip else None,
                )
            else:
                built = endpoint_session(evs, threshold_ms=project.apdex_threshold_ms)
            if built is not None:
                out.append(built)
        return out

    def player_sessions(
        self,
        project: Project,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        limit: int | None = 100,
        started_within: bool = False,
        ended_within: bool = False,
        order_by: str = "start",
    ) -> list[PlayerSession]:
        """Player sessions with their metrics, newest first by ``order_by`` (start or end).

        See ``ClickHouseStore.session_rows`` for how ``start``/``end`` select sessions.
        """
        rows = self.store.session_rows(
            "player",
            project.id,
            start=start,
            end=end,
            filters=filters,
            limit=limit,
            started_within=started_within,
            ended_within=ended_within,
            order_by=order_by,
        )
        return [_player(r) for r in rows]

    def desktop_sessions(
        self,
        project: Project,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        clip: bool = True,
        filters: Mapping[str, Sequence[str]] | None = None,
        oldest_first: bool = True,
    ) -> list[DesktopSession]:
        """Every desktop session overlapping the window, measured (and clipped) on its events."""
        rows = list(
            self.store.iter_session_rows(
                "desktop", project.id, start=start, end=end, filters=filters
            )
        )
        built = [
            s
            for s in self._build(project, "desktop", rows, start, end, clip)
            if isinstance(s, DesktopSession)
        ]
        built.sort(key=lambda s: (s.login, s.session), reverse=not oldest_first)
        return built

    def desktop_activity(
        self,
        project: Project,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        step: timedelta = timedelta(hours=1),
    ) -> list[UserActivity]:
        """Active (productive) time per desktop user and bucket of ``step``, oldest first.

        The sessions are those of ``desktop_sessions`` (selected and clipped to the window,
        measured with the project's idle timeout); see ``domain.sessions.activity_by_user``.
        """
        return activity_by_user(self.desktop_sessions(project, start=start, end=end), step)

    def endpoint_sessions(
        self,
        project: Project,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        limit: int | None = None,
        started_within: bool = True,
        oldest_first: bool = False,
        after: tuple[datetime, str] | None = None,
    ) -> list[EndpointSession]:
        """Endpoint sessions (by default those whose first page falls in the window)."""
        rows = self.store.session_rows(
            "endpoint",
            project.id,
            start=start,
            end=end,
            filters=filters,
            limit=limit,
            started_within=started_within,
            oldest_first=oldest_first,
            before=after,
        )
        return [
            s
            for s in self._build(project, "endpoint", rows, start, end, False)
            if isinstance(s, EndpointSession)
        ]

    def endpoint_sessions_committed(
        self,
        project: Project,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
        offset: int = 0,
    ) -> list[tuple[EndpointSession, datetime]]:
        """List endpoint sessions whose first page is in ``[start, end]``, oldest first, each
        with the time its newest event was stored (when the session was last committed).

        ``after`` continues a keyset walk after ``(date, session)`` of the last session seen;
        ``offset`` then skips that many sessions. A session stored while a walk goes on takes
        its place in the order, so following ``after`` never returns a session twice.
        """
        rows = self.store.session_rows(
            "endpoint",
            project.id,
            start=start,
            end=end,
            filters=filters,
            limit=None if limit is None else offset + limit,
            started_within=True,
            oldest_first=True,
            before=after,
        )[offset:]
        committed = {str(r["session"]): r["committed"] for r in rows}
        built = self._build(project, "endpoint", rows, start, end, False)
        return [(s, committed[s.session]) for s in built if isinstance(s, EndpointSession)]

    def newest_session_start(self, project: Project, kind: str) -> datetime | None:
        """Return when the newest session of a kind (player, desktop, endpoint) began, or None."""
        rows = self.store.session_rows(kind, project.id, limit=1)
        return rows[0]["start"] if rows else None

    def channel_sessions(
        self,
        project: Project,
        *,
        channels: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ChannelSession]:
        """Publish periods overlapping the window, oldest first.

        With ``start``, only the events such a period can hold are read, not the channels'
        whole history: those from ``start`` on, and those of the periods still open at
        ``start`` (see ``_open_at``).
        """
        events = self.store.events(project.id, "channel", start=start, end=end, sessions=channels)
        if start is not None:
            events += self._open_at(project, channels, start)
        return _periods(events, start, end)

    def channel_activity(self, project: Project, start: datetime, end: datetime) -> ChannelActivity:
        """What the overview shows of channels over ``[start, end]``, reading the window once:
        the channels' summaries, the publish periods overlapping it and its events."""
        summaries = self.store.channels(project.id)
        # One read from a day before the window: a period open at its start has most often
        # begun within that day, and then ``_open_at`` finds it and its events in this read.
        lead = start - _OPEN_LOOKBACK
        read = self.store.events(project.id, "channel", start=lead, end=end)
        events = [e for e in read if e.time >= start]
        read_before = (lead, [e for e in read if e.time <= start])
        before = self._open_at(project, None, start, summaries, read_before)
        return ChannelActivity(summaries, _periods(events + before, start, end), events)

    def _open_at(
        self,
        project: Project,
        channels: Sequence[str] | None,
        start: datetime,
        summaries: Sequence[Mapping[str, Any]] | None = None,
        read_before: tuple[datetime, Sequence[Event]] | None = None,
    ) -> list[Event]:
        """The events before ``start`` of each channel's publish period open at ``start``:
        from the channel's last PUBLISH_START before it, unless a PUBLISH_END followed.

        The channel aggregate settles most channels (begun after ``start``; off air and silent
        since; live since before it); the others' last PUBLISH_START or PUBLISH_END before
        ``start`` is looked for a day back, then further back only for channels older than
        that. A few queries whatever the number of channels, none reading their history.
        ``read_before`` is ``(t, events)``: every channel's events from ``t`` to ``start``
        (inclusive, oldest first), already read; what they hold is not read again.
        """
        opened: dict[str, datetime] = {}
        unknown: list[tuple[str, datetime]] = []
        for c in self.store.channels(project.id) if summaries is None else summaries:
            name = c["channel"]
            if (channels is not None and name not in channels) or c["first"] >= start:
                continue
            if not c["live"] and c["last"] < start:
                continue
            if c["live"] and c["last_publish_start"] <= start:
                opened[name] = c["last_publish_start"]
            else:
                unknown.append((name, c["first"]))
        back = _OPEN_LOOKBACK
        while unknown:
            lo = start - back
            latest: dict[str, Event] = {}
            names = {name for name, _ in unknown}
            if read_before is not None and lo >= read_before[0]:
                found: Sequence[Event] = [
                    e
                    for e in read_before[1]
                    if e.time >= lo and e.session in names and e.type in _PUBLISH_EDGES
                ]
            else:
                found = self.store.events(
                    project.id,
                    "channel",
                    start=lo,
                    end=start,
                    sessions=sorted(names),
                    types=list(_PUBLISH_EDGES),
                )
            for e in found:
                latest[e.session] = e  # oldest first: the last one seen is the latest
            still: list[tuple[str, datetime]] = []
            for name, first in unknown:
                if name in latest:
                    if latest[name].type == "PUBLISH_START":
                        opened[name] = latest[name].time
                elif first < lo:
                    still.append((name, first))
            unknown, back = still, back * 4
        if not opened:
            return []
        first = min(opened.values())
        if read_before is not None and first >= read_before[0]:
            before: Sequence[Event] = [e for e in read_before[1] if e.session in opened]
        else:
            before = self.store.events(
                project.id, "channel", start=first, end=start, sessions=list(opened)
            )
        return [e for e in before if opened[e.session] <= e.time < start]

    # ------------------------------------------------------------------ one session

    def get_session(
        self, project: Project, kind: str, key: str
    ) -> tuple[AnySession, list[Event]] | None:
        """One session and its events in time order, or None."""
        if kind == "channel":
            channel, _, start = key.rpartition("@")
            start_ms, _, seq = start.partition("~")
            if not channel or not _ascii_digits(start_ms) or (seq and not _ascii_digits(seq)):
                return None
            for s in self.channel_sessions(project, channels=[channel]):
                if s.key == key:
                    return s, list(s.events)
            return None
        if kind == "desktop" and not _ascii_digits(key):
            return None
        events = self.store.session_events(project.id, kind, [key]).get(key, [])
        if not events:
            return None
        session: AnySession | None
        if kind == "player":
            rows = self.store.session_rows(kind, project.id, sessions=[key], limit=1)
            if not rows:
                return None
            session = _player(rows[0])
        elif kind == "desktop":
            session = desktop_session(
                events, idle_timeout=timedelta(seconds=project.idle_timeout_s)
            )
        else:
            session = endpoint_session(events, threshold_ms=project.apdex_threshold_ms)
        return (session, events) if session is not None else None

    def iter_sessions(self, project: Project, q: SessionQuery) -> Iterator[AnySession]:
        """Every session of a query, following the cursor."""
        cursor = q.cursor
        while True:
            page = self.list_sessions(
                project,
                SessionQuery(q.kind, q.start, q.end, q.filters, q.limit, cursor, q.clip),
            )
            yield from page.sessions
            if page.next is None:
                return
            cursor = page.next

    # ------------------------------------------------------------------ time series

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


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _overlaps(s: datetime, e: datetime | None, lo: datetime | None, hi: datetime | None) -> bool:
    if hi is not None and s > hi:
        return False
    return not (lo is not None and e is not None and e < lo)


def _player(r: Mapping[str, Any]) -> PlayerSession:
    return PlayerSession(
        session=r["session"],
        user=r["user"],
        start=r["start"],
        end=r["end"],
        origin=r["origin"],
        os=r["os"],
        device=r["device"],
        video_type=r["video_type"],
        events=r["events"],
        metrics=player_metrics_from_sums(r["durations"], r["counts"]),
    )


def _t(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


def session_to_dict(s: AnySession, now: datetime | None = None) -> dict[str, Any]:
    """The native JSON shape of a session (times RFC 3339 UTC, durations in ms)."""
    if isinstance(s, PlayerSession):
        m = s.metrics
        return {
            "kind": "player",
            "session": s.session,
            "user": s.user,
            "start": _t(s.start),
            "end": _t(s.end),
            "origin": s.origin,
            "os": s.os,
            "device": s.device,
            "video_type": s.video_type,
            "events": s.events,
            "player_start_ms": m.player_start_ms,
            "video_start_ms": m.video_start_ms,
            "total_start_ms": m.total_start_ms,
            "rebuffering_ms": m.rebuffering_ms,
            "playing_ms": m.playing_ms,
            "rebuffer_ratio": round(m.rebuffer_ratio, 4),
            "errors": m.errors,
            "is_error": m.is_error,
        }
    if isinstance(s, ChannelSession):
        return {
            "kind": "channel",
            "session": s.key,
            "channel": s.channel,
            "start": _t(s.start),
            "end": _t(s.end),
            "live": s.live,
            "duration_ms": s.duration_ms(now or datetime.now(UTC)),
            "recordings": [{"start": _t(r.start), "end": _t(r.end)} for r in s.recordings],
            "errors": len(s.errors),
            "events": len(s.events),
        }
    if isinstance(s, DesktopSession):
        return {
            "kind": "desktop",
            "session": s.session,
            "user_id": s.user_id,
            "user_name": s.user_name,
            "client_guid": s.client_guid,
            "client_name": s.client_name,
            "login": _t(s.login),
            "logout": _t(s.logout),
            "start": _t(s.start),
            "end": _t(s.end),
            "duration_ms": s.duration_ms,
            "idle_ms": s.idle_ms,
            "productive_ms": s.productive_ms,
            "idle_gaps": [{"start": _t(g.start), "end": _t(g.end)} for g in s.gaps],
        }
    return {
        "kind": "endpoint",
        "session": s.session,
        "agent_id": s.agent_id,
        "visited_site": s.visited_site,
        "protocol": s.protocol,
        "port": s.port,
        "source_addr": s.source_addr,
        "org_name": s.org_name,
        "start": _t(s.date),
        "end": _t(s.last),
        "pages": s.number_of_pages,
        "experience_score": s.experience_score,
    }


assert set(METRICS) == set(KINDS)
