"""Event reads: a session's events, filtered event lists, counts and the kinds stored."""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from sessionscope.domain.events import KINDS, Event
from sessionscope.store.engine import Engine, ms, to_dt

__all__ = ["EventReads"]


_EVENT_SELECT = (
    "kind, session, id, toUnixTimestamp64Milli(time) AS t, type, duration_ms, user, data"
)


def _row_to_event(row: Sequence[Any]) -> Event:
    kind, session, eid, t, etype, duration, user, data = row
    return Event(
        id=eid,
        kind=kind,
        time=to_dt(t),
        type=etype,
        session=session,
        user=user,
        duration_ms=duration,
        attrs=orjson.loads(data) if data else {},
    )


class EventReads(Engine):
    """Reads of the events table (and of the ids table, which counts them exactly once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Kinds with stored events by project (see ``event_kinds``): (read again after, kinds);
        #: and those of the inserts this process made.
        self._kinds: dict[int, tuple[float, frozenset[str]]] = {}
        self._inserted_kinds: dict[int, frozenset[str]] = {}

    def count_events(self, project_id: int, kind: str | None = None) -> int:
        """Count distinct stored events of a project (idempotent over duplicates)."""
        rows = self.query(
            "SELECT uniqExact(id) FROM event_ids WHERE project_id = {p:UInt32}"
            + (" AND kind = {k:String}" if kind else ""),
            {"p": project_id, "k": kind or ""},
        )
        return int(rows[0][0])

    def session_events(
        self, project_id: int, kind: str, sessions: Iterable[str]
    ) -> dict[str, list[Event]]:
        """Return the events of the given sessions (grouping keys), each in time order."""
        keys = list(dict.fromkeys(sessions))
        out: dict[str, list[Event]] = {k: [] for k in keys}
        if not keys:
            return out
        rows = self.query(
            f"SELECT {_EVENT_SELECT} FROM events WHERE project_id = {{p:UInt32}} "
            "AND kind = {k:String} AND session IN {s:Array(String)} "
            "ORDER BY session, time, ingested_at, seq, id LIMIT 1 BY session, id",
            {"p": project_id, "k": kind, "s": keys},
        )
        for row in rows:
            out[row[1]].append(_row_to_event(row))
        return out

    def events(
        self,
        project_id: int,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        level: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Event]:
        """Return events of a kind, filtered by time (inclusive), sessions, types and level."""
        where, params = self._event_filter(project_id, kind, start, end, sessions, types, level)
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT {_EVENT_SELECT} FROM events WHERE {where} "
            f"ORDER BY time {order}, ingested_at {order}, seq {order}, id {order} LIMIT 1 BY id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [_row_to_event(r) for r in self.query(sql, params)]

    def count_matching_events(
        self,
        project_id: int,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        level: str | None = None,
    ) -> int:
        where, params = self._event_filter(project_id, kind, start, end, sessions, types, level)
        return int(self.query(f"SELECT uniqExact(id) FROM events WHERE {where}", params)[0][0])

    @staticmethod
    def _event_filter(
        project_id: int,
        kind: str,
        start: datetime | None,
        end: datetime | None,
        sessions: Sequence[str] | None,
        types: Sequence[str] | None,
        level: str | None,
    ) -> tuple[str, dict[str, Any]]:
        clauses = ["project_id = {p:UInt32}", "kind = {k:String}"]
        params: dict[str, Any] = {"p": project_id, "k": kind}
        if start is not None:
            clauses.append("time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')")
            params["lo"] = ms(start)
        if end is not None:
            clauses.append("time <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')")
            params["hi"] = ms(end)
        if sessions is not None:
            clauses.append("session IN {s:Array(String)}")
            params["s"] = list(sessions)
        if types is not None:
            clauses.append("type IN {t:Array(String)}")
            params["t"] = list(types)
        if level is not None:
            clauses.append("level = {lv:String}")
            params["lv"] = level
        return " AND ".join(clauses), params

    def event_kinds(self, project_id: int) -> list[str]:
        """Kinds of which the project has at least one stored event."""
        # Every page of the dashboard asks, and finding them reads a column of every stored
        # event. A kind once stored stays (nothing deletes events), so what was read is kept,
        # and read again after a while only while some kind is missing; the kinds of this
        # process's own inserts are added as they are made (``_stored_kinds``).
        cached = self._kinds.get(project_id)
        if cached is None or (cached[0] < _time.monotonic() and len(cached[1]) < len(KINDS)):
            rows = self.query(
                "SELECT DISTINCT kind FROM event_ids WHERE project_id = {p:UInt32}",
                {"p": project_id},
            )
            cached = (_time.monotonic() + self._cache_s, frozenset(str(r[0]) for r in rows))
            self._kinds[project_id] = cached
        return sorted(cached[1] | self._inserted_kinds.get(project_id, frozenset()))
