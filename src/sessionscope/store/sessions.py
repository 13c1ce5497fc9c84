"""Session aggregates: one spec per kind (its aggregate table, columns and decoding side by
side), pages of sessions in order, counts, and the channel summary."""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sessionscope import registry
from sessionscope.domain.sessions import (
    PLAYER_ERROR_TYPES,
    PLAYER_PLAYING_TYPES,
    PLAYER_REBUFFER_TYPES,
    PLAYER_START_TYPES,
)
from sessionscope.store.engine import Engine, StoreError, ms, to_dt
from sessionscope.store.schema.current import PLAYER_TYPES

__all__ = [
    "PLAYER_EVENT_COLUMNS",
    "SPECS",
    "SessionReads",
    "SessionSpec",
    "filter_column",
    "session_filters",
]


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """How one kind's sessions are read from its aggregate table."""

    #: The aggregate table (one or more rows per session, merged on read).
    table: str
    #: The columns of a decoded row, merged over a session's rows (``session`` first).
    select: str
    #: Filter names (of the native API) and the alias each matches in ``filter_select``
    #: (vendors add other names for some: ``filter_column``).
    filters: dict[str, str]
    filter_select: str
    #: The type of the ``session`` column and how a session key is cast to it.
    key_type: str
    decode: Callable[[Sequence[Any]], dict[str, Any]]
    cast: Callable[[str], Any]


_M = "toUnixTimestamp64Milli"


# ---------------------------------------------------------------------------------- player


def _player_type_column(prefix: str, action: str) -> str:
    """The aggregate's sum column of a player action type (``d_`` durations, ``n_`` counts)."""
    if action not in PLAYER_TYPES:
        raise StoreError(f"no player aggregate column for action type {action!r}")
    return f"{prefix}_{action}"


def player_sum(prefix: str, actions: Iterable[str]) -> str:
    """SQL summing the aggregate's columns of ``actions`` over a session's rows."""
    found = [f"sum({_player_type_column(prefix, a)})" for a in actions]
    return " + ".join(found) if found else "toUInt64(0)"


#: The per-type sums a player session's metrics are derived from (``player_metrics_from_sums``):
#: the durations of the types of the start, rebuffering and playing metrics, the counts of the
#: error types. Only these columns are read.
_PLAYER_DURATION_TYPES = tuple(
    dict.fromkeys(PLAYER_START_TYPES + PLAYER_REBUFFER_TYPES + PLAYER_PLAYING_TYPES)
)
_PLAYER_COUNT_TYPES = PLAYER_ERROR_TYPES


def _decode_player(r: Sequence[Any]) -> dict[str, Any]:
    n = len(_PLAYER_DURATION_TYPES)
    return {
        "session": r[0],
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "user": r[3],
        "origin": r[4],
        "os": r[5],
        "device": r[6],
        "video_type": r[7],
        "events": int(r[8]),
        "durations": {t: int(v) for t, v in zip(_PLAYER_DURATION_TYPES, r[9 : 9 + n], strict=True)},
        "counts": {t: int(v) for t, v in zip(_PLAYER_COUNT_TYPES, r[9 + n :], strict=False)},
    }


PLAYER = SessionSpec(
    "player_sessions",
    f"session, {_M}(min(start)), {_M}(max(end)), max(user), max(origin), max(os), "
    "max(device), max(video_type), sum(events), "
    + ", ".join(f"sum({_player_type_column('d', t)})" for t in _PLAYER_DURATION_TYPES)
    + "".join(f", sum({_player_type_column('n', t)})" for t in _PLAYER_COUNT_TYPES),
    {"device": "dv", "video_type": "vt", "user": "u"},
    ", max(device) AS dv, max(video_type) AS vt, max(user) AS u",
    "String",
    _decode_player,
    str,
)

#: Player filters as columns of the events table (the aggregate's are in ``PLAYER``).
PLAYER_EVENT_COLUMNS = {"device": "device", "video_type": "video_type", "user": "user"}


# --------------------------------------------------------------------------------- desktop


def _decode_desktop(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "session": str(r[0]),
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "login": to_dt(r[3]) if r[3] < 9_000_000_000_000 else None,
        "logout": to_dt(r[4]) if r[4] > 0 else None,
        "user_id": int(r[5]),
        "user_name": r[6],
        "client_guid": r[7],
        "client_name": r[8],
        "events": int(r[9]),
    }


DESKTOP = SessionSpec(
    "desktop_sessions",
    f"session, {_M}(min(start)), {_M}(max(end)), {_M}(min(login)), {_M}(max(logout)), "
    "max(user_id), max(user_name), max(client_guid), max(client_name), sum(events)",
    {"user_id": "toString(uid)", "user": "toString(uid)"},
    ", max(user_id) AS uid",
    "UInt32",
    _decode_desktop,
    int,
)


# -------------------------------------------------------------------------------- endpoint


def _decode_endpoint(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "session": r[0],
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "agent_id": r[3],
        "visited_site": r[4],
        "protocol": r[5],
        "port": int(r[6]),
        "source_addr": r[7],
        "org_name": r[8],
        # When the session's newest event was stored (the column is named ``committed``).
        "stored_at": to_dt(r[9]),
        "pages": int(r[10]),
        "events": int(r[11]),
    }


ENDPOINT = SessionSpec(
    "endpoint_sessions",
    # The first page's values are the least (time, id, values...) tuple (schema v4).
    f"session, {_M}(min(start)), {_M}(max(end)), tupleElement(min(first), 3), "
    "tupleElement(min(first), 4), tupleElement(min(first), 5), tupleElement(min(first), 6), "
    "tupleElement(min(first), 7), tupleElement(min(first_org), 3), "
    f"{_M}(max(committed)), length(groupUniqArrayArray(pages)), sum(events)",
    {
        "agent_id": "ag",
        "visited_site": "vs",
        "protocol": "pr",
        "port": "toString(po)",
        "source_addr": "sa",
        "user": "ag",
    },
    ", tupleElement(min(first), 3) AS ag, tupleElement(min(first), 4) AS vs, "
    "tupleElement(min(first), 5) AS pr, tupleElement(min(first), 6) AS po, "
    "tupleElement(min(first), 7) AS sa",
    "String",
    _decode_endpoint,
    str,
)


# ----------------------------------------------------------------------------------- specs

SPECS: dict[str, SessionSpec] = {"player": PLAYER, "desktop": DESKTOP, "endpoint": ENDPOINT}


def _filter_clause(match: str, column: str, param: str) -> str:
    """The HAVING clause of one session filter: the column matches any of the values, exactly
    or (``hostname``) as a site or one of its subdomains, case-insensitive."""
    if match == "hostname":
        return (
            f"arrayExists(d -> {column} = lower(d) OR endsWith({column}, concat('.', lower(d))), "
            f"{{{param}:Array(String)}})"
        )
    return f"{column} IN {{{param}:Array(String)}}"


def filter_column(kind: str, name: str) -> tuple[str, str]:
    """``(column, match)`` of a session filter of ``kind``: its own, or another name a vendor
    registered for one (``registry.FilterAlias``)."""
    spec = SPECS[kind]
    if name in spec.filters:
        return spec.filters[name], "exact"
    for alias in registry.filter_aliases(kind):
        if alias.name == name and alias.target in spec.filters:
            return spec.filters[alias.target], alias.match
    raise StoreError(f"unknown {kind} filter {name!r}")


def session_filters() -> dict[str, tuple[str, ...]]:
    """Filters each aggregate kind accepts (names of the native API): its own, then those
    vendors registered."""
    return {
        kind: tuple(spec.filters) + tuple(a.name for a in registry.filter_aliases(kind))
        for kind, spec in SPECS.items()
    }


class SessionReads(Engine):
    """Pages and counts of session aggregates; the channel summary."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Session pages aggregate only the sessions past a bound (see ``session_rows``) once a
        #: project has this many rows in the kind's aggregate; below, aggregating all is as fast.
        self.bounded_page_min_rows = 5_000
        self._row_counts: dict[tuple[str, int], tuple[float, int]] = {}

    def channels(self, project_id: int) -> list[dict[str, Any]]:
        """Per-channel summary from the channel aggregate."""
        rows = self.query(
            "SELECT channel, toUnixTimestamp64Milli(min(first)), "
            "toUnixTimestamp64Milli(max(last)), "
            "toUnixTimestamp64Milli(max(last_publish_start)), "
            "toUnixTimestamp64Milli(max(last_publish_end)), "
            "uniqExactIfMerge(errors), uniqExactMerge(events) "
            "FROM channel_stats WHERE project_id = {p:UInt32} GROUP BY channel ORDER BY channel",
            {"p": project_id},
        )
        return [
            {
                "channel": r[0],
                "first": to_dt(r[1]),
                "last": to_dt(r[2]),
                "live": r[3] > 0 and r[3] > r[4],
                "last_publish_start": to_dt(r[3]) if r[3] else None,
                "errors": int(r[5]),
                "events": int(r[6]),
            }
            for r in rows
        ]

    # ---------------------------------------------------------------- session aggregates

    def session_rows(
        self,
        kind: str,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int | None = 100,
        sessions: Sequence[str] | None = None,
        oldest_first: bool = False,
        started_within: bool = False,
        ended_within: bool = False,
        order_by: str = "start",
    ) -> list[dict[str, Any]]:
        """List session aggregates of a kind (player, desktop, endpoint), newest start first.

        A session matches ``[start, end]`` when it overlaps it (or, with ``started_within``, when
        it started inside it; with ``ended_within``, when its last event is inside it).
        ``filters`` are exact matches on aggregate columns (any of the values). ``order_by`` is
        ``"start"`` (first event) or ``"end"`` (last event); ``before`` is a keyset cursor
        ``(that time, session)``.
        """
        if order_by not in ("start", "end"):
            raise StoreError("order_by must be 'start' or 'end'")
        ocol = "e" if order_by == "end" else "s"
        spec = SPECS[kind]
        having: list[str] = []
        params: dict[str, Any] = {"p": project_id, "k": kind}
        # Bounds on the order column in the direction of travel: the session index can apply
        # them too (the rows that bound a page, below).
        ahead: list[str] = []
        travel = ">=" if oldest_first else "<="
        if end is not None:
            hcol = "e" if ended_within else "s"
            having.append(f"{hcol} <= fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')")
            params["hi"] = ms(end)
            if hcol == ocol and not oldest_first:
                ahead.append(f"t {travel} fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')")
        if start is not None:
            col = "s" if started_within else "e"
            having.append(f"{col} >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
            params["lo"] = ms(start)
            if col == ocol and oldest_first:
                ahead.append(f"t {travel} fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
        having_filters = bool(filters)
        for i, (name, values) in enumerate((filters or {}).items()):
            column, match = filter_column(kind, name)
            having.append(_filter_clause(match, column, f"f{i}"))
            params[f"f{i}"] = [str(v) for v in values]
        if before is not None:
            op = ">" if oldest_first else "<"
            having.append(
                f"({ocol}, skey) {op} "
                "(fromUnixTimestamp64Milli({cs:Int64}, 'UTC'), {ck:String})"
            )
            params["cs"] = ms(before[0])
            params["ck"] = before[1]
            # Strictly past the cursor in the index too: the cursor's own session, whose row
            # the previous page read, is not among the rows that bound this page.
            ahead.append(
                f"(t, session) {op} (fromUnixTimestamp64Milli({{cs:Int64}}, 'UTC'), {{ck:String}})"
            )
        where = "project_id = {p:UInt32}"
        if sessions is not None:
            where += f" AND session IN {{ss:Array({spec.key_type})}}"
            params["ss"] = [spec.cast(s) for s in sessions]
        order = "ASC" if oldest_first else "DESC"

        def page(candidates: str | None, region: str | None) -> list[tuple[Any, ...]]:
            bounded_where = (
                where if candidates is None else f"{where} AND session IN ({candidates})"
            )
            bounded_having = [*having, region] if region else having
            sql = (
                f"SELECT {spec.select}, min(start) AS s, max(end) AS e, "
                f"toString(session) AS skey{spec.filter_select} FROM {spec.table} "
                f"WHERE {bounded_where} GROUP BY session"
                + (f" HAVING {' AND '.join(bounded_having)}" if bounded_having else "")
                + f" ORDER BY {ocol} {order}, skey {order}"
                + (f" LIMIT {int(limit)}" if limit is not None else "")
            )
            return self.query(sql, params)

        found: list[tuple[Any, ...]] | None = None
        if (
            limit is not None
            and sessions is None
            and self._aggregate_rows(spec.table, project_id) >= self.bounded_page_min_rows
        ):
            # Picking one page would aggregate every session of the project. Read the session
            # index in order instead, and aggregate only the sessions it names near the top.
            edge = 2 if order_by == "end" else 1
            cast = "toUInt32(session)" if spec.key_type == "UInt32" else "session"
            idx = f"project_id = {{p:UInt32}} AND kind = {{k:String}} AND edge = {edge}"
            idx += "".join(f" AND {bound}" for bound in ahead)
            # A filter keeps only some of the sessions the index names: start deeper. Without
            # one, an exclusive store's index holds about one start row per session (see
            # ``_session_starts``), so the first ``limit`` rows usually name the whole page;
            # but a session still going on has an end row from each recent insert of it.
            if having_filters:
                depths: tuple[int, ...] = (32, 256)
            elif self.exclusive and order_by == "start":
                depths = (1, 4, 32, 256)
            else:
                depths = (4, 32, 256)
            for depth in depths:
                rank = depth * max(1, int(limit))
                bound = self._index_bound(idx, params, oldest_first, rank)
                if bound is None:  # the index holds fewer rows: its sessions are all there are
                    found = page(f"SELECT {cast} FROM session_index WHERE {idx}", None)
                    break
                # From the bound row B on, every session's representative row (its first row
                # for starts, its last for ends) was read, so that region of the order is
                # complete; B's own session is in it when B is its representative row.
                params["bt"], params["bk"] = bound
                b_row = "(fromUnixTimestamp64Milli({bt:Int64}, 'UTC'), {bk:String})"
                tail = f"(t, session) {'<=' if oldest_first else '>='} {b_row}"
                region = f"({ocol}, skey) {'<=' if oldest_first else '>='} {b_row}"
                candidate = page(f"SELECT {cast} FROM session_index WHERE {idx} AND {tail}", region)
                if len(candidate) >= limit:
                    found = candidate
                    break
        rows = [spec.decode(r) for r in (found if found is not None else page(None, None))]
        rows.sort(key=lambda r: (r[order_by], r["session"]), reverse=not oldest_first)
        return rows

    def _index_bound(
        self, where: str, params: Mapping[str, Any], ascending: bool, depth: int
    ) -> tuple[int, str] | None:
        """The ``depth``-th row ``(t ms, session)`` of the session index in order, or None
        when fewer rows match."""
        order = "ASC" if ascending else "DESC"
        rows = self.query(
            f"SELECT toUnixTimestamp64Milli(t), session FROM session_index WHERE {where} "
            f"ORDER BY t {order}, session {order} LIMIT 1 OFFSET {int(depth) - 1}",
            params,
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def _aggregate_rows(self, table: str, project_id: int) -> int:
        """Rows of a project in an aggregate table, counted at most once a minute."""
        if self.bounded_page_min_rows <= 0:  # always bounded: no need to count
            return 0
        now = _time.monotonic()
        cached = self._row_counts.get((table, project_id))
        if cached is None or cached[0] < now:
            rows = self.query(
                f"SELECT count() FROM {table} WHERE project_id = {{p:UInt32}}", {"p": project_id}
            )
            cached = self._row_counts[(table, project_id)] = (now + 60.0, int(rows[0][0]))
        return cached[1]

    def count_sessions(
        self,
        kind: str,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        started_within: bool = False,
    ) -> int:
        spec = SPECS[kind]
        having: list[str] = []
        params: dict[str, Any] = {"p": project_id}
        if end is not None:
            having.append("s <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')")
            params["hi"] = ms(end)
        if start is not None:
            col = "s" if started_within else "e"
            having.append(f"{col} >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
            params["lo"] = ms(start)
        for i, (name, values) in enumerate((filters or {}).items()):
            column, match = filter_column(kind, name)
            having.append(_filter_clause(match, column, f"f{i}"))
            params[f"f{i}"] = [str(v) for v in values]
        sql = (
            f"SELECT count() FROM (SELECT session, min(start) AS s, max(end) AS e"
            f"{spec.filter_select} FROM {spec.table} WHERE project_id = {{p:UInt32}} "
            "GROUP BY session" + (f" HAVING {' AND '.join(having)}" if having else "") + ")"
        )
        return int(self.query(sql, params)[0][0])

    def iter_session_rows(
        self, kind: str, project_id: int, batch: int = 5000, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield every matching session aggregate, newest first, in keyset batches."""
        before: tuple[datetime, str] | None = None
        while True:
            rows = self.session_rows(kind, project_id, before=before, limit=batch, **kwargs)
            yield from rows
            if len(rows) < batch:
                return
            before = (rows[-1][kwargs.get("order_by", "start")], str(rows[-1]["session"]))
