"""How each kind's session metrics are derived; clipping to a time window.

Every definition here is the one the native API, the CLI, the dashboard and the vendor-compatible
APIs use; ``docs/metrics.md`` states the same rules in prose. Functions are pure: they take
validated :class:`~sessionscope.domain.events.Event` values (or per-type sums already aggregated by
the store) and return new immutable values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sessionscope.domain.events import Event, epoch_ms
from sessionscope.domain.metrics import APDEX, EXPERIENCE_SCORE, IDLE_GAPS
from sessionscope.domain.timerange import floor_time

__all__ = [
    "DEFAULT_APDEX_THRESHOLD_MS",
    "DEFAULT_IDLE_TIMEOUT",
    "PLAYER_ERROR_TYPES",
    "PLAYER_PLAYING_TYPES",
    "PLAYER_REBUFFER_TYPES",
    "PLAYER_START_TYPES",
    "ChannelSession",
    "DesktopSession",
    "EndpointPage",
    "EndpointSession",
    "Period",
    "PlayerMetrics",
    "PlayerSession",
    "UserActivity",
    "activity_by_user",
    "channel_sessions",
    "desktop_session",
    "endpoint_session",
    "idle_gaps",
    "merge_periods",
    "page_score",
    "player_metrics",
    "player_metrics_from_sums",
    "productive_periods",
    "split_by_step",
]

#: Desktop idle timeout when a project sets none: 15 minutes without input.
DEFAULT_IDLE_TIMEOUT = timedelta(minutes=15)
#: Apdex threshold T on a page's onLoad when a project sets none.
DEFAULT_APDEX_THRESHOLD_MS = 2000

# Player action types counted by each metric. The store aggregates durations per type; these
# tuples are the only place that says which types make up which metric.
PLAYER_START_TYPES: tuple[str, ...] = ("player_start", "startup")
PLAYER_REBUFFER_TYPES: tuple[str, ...] = ("rebuffering",)
PLAYER_PLAYING_TYPES: tuple[str, ...] = ("playing",)
PLAYER_ERROR_TYPES: tuple[str, ...] = ("error",)


# --------------------------------------------------------------------------------------------
# player


@dataclass(frozen=True, slots=True)
class PlayerMetrics:
    """Startup, rebuffering and playing time of a player session, in milliseconds."""

    player_start_ms: int
    video_start_ms: int
    rebuffering_ms: int
    playing_ms: int
    errors: int

    @property
    def total_start_ms(self) -> int:
        return self.player_start_ms + self.video_start_ms

    @property
    def is_error(self) -> bool:
        return self.errors > 0

    @property
    def rebuffer_ratio(self) -> float:
        """Share of watch time spent stalled: rebuffering / (rebuffering + playing)."""
        watched = self.rebuffering_ms + self.playing_ms
        return self.rebuffering_ms / watched if watched else 0.0


def player_metrics_from_sums(
    durations_ms: Mapping[str, int], counts: Mapping[str, int]
) -> PlayerMetrics:
    """Derive player metrics from duration sums and event counts per action type."""
    return PlayerMetrics(
        player_start_ms=int(durations_ms.get("player_start", 0)),
        video_start_ms=int(durations_ms.get("startup", 0)),
        rebuffering_ms=sum(int(durations_ms.get(t, 0)) for t in PLAYER_REBUFFER_TYPES),
        playing_ms=sum(int(durations_ms.get(t, 0)) for t in PLAYER_PLAYING_TYPES),
        errors=sum(int(counts.get(t, 0)) for t in PLAYER_ERROR_TYPES),
    )


def player_metrics(events: Iterable[Event]) -> PlayerMetrics:
    """Derive player metrics from a session's events."""
    durations: dict[str, int] = {}
    counts: dict[str, int] = {}
    for e in events:
        durations[e.type] = durations.get(e.type, 0) + (e.duration_ms or 0)
        counts[e.type] = counts.get(e.type, 0) + 1
    return player_metrics_from_sums(durations, counts)


# --------------------------------------------------------------------------------------------
# channel


@dataclass(frozen=True, slots=True)
class Period:
    """A time period; ``end`` is None while it is still going on."""

    start: datetime
    end: datetime | None

    def overlaps(self, lo: datetime | None, hi: datetime | None) -> bool:
        if hi is not None and self.start > hi:
            return False
        return not (lo is not None and self.end is not None and self.end < lo)


@dataclass(frozen=True, slots=True)
class ChannelSession:
    """One publish period of a channel (PUBLISH_START to PUBLISH_END, or still live)."""

    channel: str
    start: datetime
    end: datetime | None
    recordings: tuple[Period, ...]
    errors: tuple[Event, ...]
    events: tuple[Event, ...]
    #: 1, or the rank of this period among the channel's periods that began in the same
    #: millisecond (a period opened and closed in that millisecond, then another one).
    seq: int = 1

    @property
    def key(self) -> str:
        """``<channel>@<start epoch ms>``, with ``~<seq>`` when ``seq`` > 1: unique per channel."""
        base = f"{self.channel}@{epoch_ms(self.start)}"
        return base if self.seq == 1 else f"{base}~{self.seq}"

    @property
    def live(self) -> bool:
        return self.end is None

    def duration_ms(self, now: datetime) -> int:
        end = self.end or now
        return max(0, (end - self.start) // timedelta(milliseconds=1))


def channel_sessions(events: Iterable[Event]) -> list[ChannelSession]:
    """Split one channel's events into publish periods, oldest first.

    A PUBLISH_START opens a period and a PUBLISH_END closes it; a second PUBLISH_START while a
    period is open is a restart and closes the open period at that instant, unless it is in the
    same millisecond as the open period's start (the same start, sent twice). Events outside any
    period (e.g. STREAM_RESERVE before the first publish) belong to no session. Recordings are
    ONAIR_START/ONAIR_END pairs inside the period; a recording still open when the period ends
    ends with it.
    """
    ordered = sorted(events, key=lambda e: (e.time, e.id))
    sessions: list[ChannelSession] = []
    current: list[Event] | None = None

    def close(end: datetime | None) -> None:
        assert current is not None
        sessions.append(_channel_period(current, end))

    for e in ordered:
        if e.type == "PUBLISH_START":
            if current is not None and epoch_ms(current[0].time) == epoch_ms(e.time):
                current.append(e)
                continue
            if current is not None:
                close(e.time)
            current = [e]
        elif current is not None:
            current.append(e)
            if e.type == "PUBLISH_END":
                close(e.time)
                current = None
    if current is not None:
        close(None)
    # Periods that began in the same millisecond (one opened and closed in it, then another)
    # are told apart by their rank, so that every key names one period.
    ranked: list[ChannelSession] = []
    for s in sessions:
        if ranked and epoch_ms(ranked[-1].start) == epoch_ms(s.start):
            s = replace(s, seq=ranked[-1].seq + 1)
        ranked.append(s)
    return ranked


def _channel_period(events: list[Event], end: datetime | None) -> ChannelSession:
    recordings: list[Period] = []
    rec_start: datetime | None = None
    for e in events:
        if e.type == "ONAIR_START" and rec_start is None:
            rec_start = e.time
        elif e.type == "ONAIR_END" and rec_start is not None:
            recordings.append(Period(rec_start, e.time))
            rec_start = None
    if rec_start is not None:
        recordings.append(Period(rec_start, end))
    return ChannelSession(
        channel=events[0].session,
        start=events[0].time,
        end=end,
        recordings=tuple(recordings),
        errors=tuple(e for e in events if e.attrs.get("level") == "ERROR"),
        events=tuple(events),
    )


# --------------------------------------------------------------------------------------------
# desktop


@dataclass(frozen=True, slots=True)
class DesktopSession:
    """A desktop session measured over its (possibly clipped) span."""

    session: int
    user_id: int
    user_name: str
    client_guid: str
    client_name: str
    login: datetime
    logout: datetime | None
    start: datetime
    end: datetime
    idle_ms: int
    gaps: tuple[Period, ...]

    @property
    def duration_ms(self) -> int:
        return _span_ms(self.start, self.end)

    @property
    def productive_ms(self) -> int:
        return self.duration_ms - self.idle_ms


_MS = timedelta(milliseconds=1)


def _span_ms(a: datetime, b: datetime) -> int:
    # Integer arithmetic on timedelta: float seconds * 1000 truncates 1.005 s to 1004 ms.
    return (b - a) // _MS


def idle_gaps(times: Sequence[datetime], timeout: timedelta) -> list[Period]:
    """Return the gaps between consecutive activity times that are longer than ``timeout``."""
    ordered = sorted(times)
    return [
        Period(a, b) for a, b in itertools.pairwise(ordered) if IDLE_GAPS.is_idle(b - a, timeout)
    ]


def desktop_session(
    events: Sequence[Event],
    *,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    start: datetime | None = None,
    end: datetime | None = None,
) -> DesktopSession | None:
    """Measure a desktop session, clipped to ``[start, end]`` when bounds are given.

    Login, activity and logout events are all activity points. Unclipped, the session runs from
    its first activity point (normally the login) to its last (the logout, or while still open
    the last activity); ``login``/``logout`` keep the reported times. A session
    that began before ``start`` begins at its first activity at or after ``start``; one that ended
    after ``end`` ends at its last activity at or before ``end``. Idle time is the sum of the gaps
    between consecutive activity points of the measured span longer than ``idle_timeout``;
    productive time is the rest, so duration = idle + productive always holds.

    A session that overlaps the window with no activity point inside it (its last activity
    before ``start`` and its next one after ``end``) was open throughout the window without
    being used in it: it is returned with an empty measured span at ``start`` (all three
    figures 0), so that it is listed like every other session open during the window.

    Returns None when the session does not overlap the window (or ``end`` is before ``start``).
    """
    if not events:
        return None
    ordered = sorted(events, key=lambda e: (e.time, e.id))
    times = [e.time for e in ordered]
    logins = [e.time for e in ordered if e.type == "login"]
    logouts = [e.time for e in ordered if e.type == "logout"]
    login = min(logins) if logins else times[0]
    logout = max(logouts) if logouts else None
    s, t = times[0], times[-1]
    if start is not None and end is not None and end < start:
        return None
    if start is not None and t < start:
        return None
    if end is not None and s > end:
        return None
    inside = [x for x in times if (start is None or x >= start) and (end is None or x <= end)]
    if inside:
        lo, hi = inside[0], inside[-1]
    else:  # only possible with both bounds: activity before start and after end
        lo = hi = start if start is not None else s
    first = ordered[0]
    last_named = next((e for e in reversed(ordered) if e.attrs.get("user_name")), first)
    gaps = idle_gaps(inside, idle_timeout)
    idle = sum(_span_ms(g.start, g.end) for g in gaps if g.end is not None)
    return DesktopSession(
        session=int(first.session),
        user_id=int(first.user),
        user_name=str(last_named.attrs.get("user_name", "")),
        client_guid=str(last_named.attrs.get("client_guid", "")),
        client_name=str(last_named.attrs.get("client_name", "")),
        login=login,
        logout=logout,
        start=lo,
        end=hi,
        idle_ms=idle,
        gaps=tuple(gaps),
    )


def productive_periods(session: DesktopSession) -> tuple[Period, ...]:
    """Return the measured span of a desktop session minus its idle gaps, oldest first.

    The periods are closed, non-empty and disjoint; their lengths add up to ``productive_ms``.
    """
    out: list[Period] = []
    cursor = session.start
    for gap in sorted(session.gaps, key=lambda g: g.start):
        if gap.end is None:
            continue
        if gap.start > cursor:
            out.append(Period(cursor, gap.start))
        cursor = max(cursor, gap.end)
    if session.end > cursor:
        out.append(Period(cursor, session.end))
    return tuple(out)


def split_by_step(periods: Iterable[Period], step: timedelta) -> dict[datetime, int]:
    """Split closed periods into buckets of ``step`` aligned on the epoch (UTC).

    Return ``{bucket start: milliseconds of the periods inside that bucket}``, oldest bucket
    first, holding only buckets with time in them. Open periods (``end`` None) are skipped.
    """
    out: dict[datetime, int] = {}
    for period in periods:
        if period.end is None or period.end <= period.start:
            continue
        t = period.start
        bucket = floor_time(t, step)
        while t < period.end:
            nxt = min(bucket + step, period.end)
            out[bucket] = out.get(bucket, 0) + _span_ms(t, nxt)
            t, bucket = nxt, bucket + step
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class UserActivity:
    """Productive (active) time of one desktop user in one time bucket."""

    user_id: int
    user_name: str
    bucket: datetime
    active_ms: int


def merge_periods(periods: Iterable[Period]) -> tuple[Period, ...]:
    """Return the union of closed periods as disjoint periods, oldest first.

    Overlapping or touching periods become one; open periods (``end`` None) are skipped.
    """
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((p.start, p.end) for p in periods if p.end is not None):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(Period(a, b) for a, b in merged)


def activity_by_user(
    sessions: Iterable[DesktopSession], step: timedelta = timedelta(hours=1)
) -> list[UserActivity]:
    """Return the active time of each desktop user per bucket of ``step``.

    A user's active time is the union of the :func:`productive_periods` of their sessions, so
    time when two sessions of one user were active at once (two machines, a reconnect) counts
    once: a user is never active for more than ``step`` in a bucket. Clipping and the idle rule
    are those the sessions were measured with. A user's name is the one of their latest session
    (by login) that has one. Buckets without active time are left out; rows are ordered by
    bucket, then user name, then user id.
    """
    periods: dict[int, list[Period]] = {}
    names: dict[int, tuple[datetime, str]] = {}
    for s in sessions:
        if s.user_name and (s.user_id not in names or names[s.user_id][0] <= s.login):
            names[s.user_id] = (s.login, s.user_name)
        periods.setdefault(s.user_id, []).extend(productive_periods(s))
    rows = [
        UserActivity(uid, names.get(uid, (bucket, ""))[1], bucket, active)
        for uid, own in periods.items()
        for bucket, active in split_by_step(merge_periods(own), step).items()
        if active > 0
    ]
    rows.sort(key=lambda r: (r.bucket, r.user_name, r.user_id))
    return rows


# --------------------------------------------------------------------------------------------
# endpoint


def page_score(on_load_ms: int | None, response_code: int, threshold_ms: int) -> float:
    """Score one page Apdex-style: 1 within T, 0.5 within 4T, else 0; 0 on HTTP errors.

    A page without an onLoad time (it never finished loading) scores 0 (``metrics.APDEX``).
    """
    return APDEX.score(on_load_ms, response_code, threshold_ms)


@dataclass(frozen=True, slots=True)
class EndpointPage:
    page_id: str
    title: str
    time: datetime
    on_content_load_ms: int | None
    on_load_ms: int | None
    response_code: int
    score: float


@dataclass(frozen=True, slots=True)
class EndpointSession:
    """An endpoint user session: the pages one agent loaded from one site in one session."""

    session: str
    agent_id: str
    visited_site: str
    protocol: str
    port: int
    source_addr: str
    org_name: str
    date: datetime
    last: datetime
    pages: tuple[EndpointPage, ...]

    @property
    def number_of_pages(self) -> int:
        return len(self.pages)

    @property
    def experience_score(self) -> float:
        """Mean of the page scores, rounded half up to 2 decimals (0.625 -> 0.63)."""
        return EXPERIENCE_SCORE.score([p.score for p in self.pages])


def endpoint_session(
    events: Sequence[Event], *, threshold_ms: int = DEFAULT_APDEX_THRESHOLD_MS
) -> EndpointSession | None:
    """Build an endpoint session from its page events (one page per distinct ``page_id``)."""
    if not events:
        return None
    ordered = sorted(events, key=lambda e: (e.time, e.id))
    seen: dict[str, EndpointPage] = {}
    for e in ordered:
        pid = str(e.attrs.get("page_id", e.id))
        if pid in seen:
            continue
        code = int(e.attrs.get("response_code", 0))
        on_load = e.attrs.get("on_load_ms")
        seen[pid] = EndpointPage(
            page_id=pid,
            title=str(e.attrs.get("title", "")),
            time=e.time,
            on_content_load_ms=e.attrs.get("on_content_load_ms"),
            on_load_ms=on_load,
            response_code=code,
            score=page_score(on_load, code, threshold_ms),
        )
    first = ordered[0]
    org = next((str(e.attrs["org_name"]) for e in ordered if e.attrs.get("org_name")), "")
    return EndpointSession(
        session=first.session,
        agent_id=first.user,
        visited_site=str(first.attrs.get("visited_site", "")),
        protocol=str(first.attrs.get("protocol", "")),
        port=int(first.attrs.get("port", 0)),
        source_addr=str(first.attrs.get("source_addr", "")),
        org_name=org,
        date=ordered[0].time,
        last=ordered[-1].time,
        pages=tuple(seen.values()),
    )


@dataclass(frozen=True, slots=True)
class PlayerSession:
    """A player session: its identity fields and metrics."""

    session: str
    user: str
    start: datetime
    end: datetime
    origin: str
    os: str
    device: str
    video_type: str
    events: int
    metrics: PlayerMetrics
