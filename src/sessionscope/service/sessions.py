"""Sessions of each kind with their metrics: pages in order, whole windows (clipped when asked),
one session with its events. Store aggregates select, order and page; the pure
definitions of ``domain.sessions`` measure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.domain.sessions import (
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
from sessionscope.service.cursor import decode_cursor, encode_cursor
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.sessions import session_filters

__all__ = [
    "FILTERS",
    "AnySession",
    "ChannelActivity",
    "SessionLists",
    "SessionPage",
    "SessionQuery",
    "session_key",
    "session_start",
]

AnySession = PlayerSession | ChannelSession | DesktopSession | EndpointSession


class _Filters(Mapping[str, tuple[str, ...]]):
    """Filters of the native session list, per kind: asked of the store (and the filter names
    vendors registered) on use, never at import."""

    def _all(self) -> dict[str, tuple[str, ...]]:
        return {**session_filters(), "channel": ("channel",)}

    def __getitem__(self, kind: str) -> tuple[str, ...]:
        return self._all()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


#: Filters of the native session list, per kind.
FILTERS: Mapping[str, tuple[str, ...]] = _Filters()

#: How far before a window's start a publish period open at it is looked for first.
_OPEN_LOOKBACK = timedelta(days=1)
_PUBLISH_EDGES = ("PUBLISH_START", "PUBLISH_END")


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
    #: Desktop only: clip sessions to [start, end] (their metrics count only what is inside).
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


class SessionLists:
    """Sessions of a project: pages, whole windows, one session with its events."""

    store: ClickHouseStore

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

    def endpoint_sessions_stored(
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
        with the time its newest event was stored.

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
        stored = {str(r["session"]): r["stored_at"] for r in rows}
        built = self._build(project, "endpoint", rows, start, end, False)
        return [(s, stored[s.session]) for s in built if isinstance(s, EndpointSession)]

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
