"""Time series and breakdowns over a range: per-bucket metrics, per-site, per-user and
per-page figures, each from the events (or aggregates) in ``[lo, hi]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sessionscope.domain.metrics import APDEX, EXPERIENCE_SCORE, IDLE_GAPS
from sessionscope.store.engine import Engine, StoreError, ms
from sessionscope.store.sessions import PLAYER, PLAYER_EVENT_COLUMNS, player_sum

__all__ = ["Series"]


def _slow_page(
    site: str, title: str, loads: int, p50: int, worst: int, score: float, session: str
) -> dict[str, Any]:
    """A row of ``slowest_pages``."""
    return {
        "site": site,
        "title": title,
        "loads": int(loads),
        "on_load_p50_ms": int(p50),
        "on_load_max_ms": int(worst),
        "score": float(score),
        "slowest_session": session,
    }


# The metric rules of ``domain.metrics``, rendered for these queries' columns.
#: A page's score from its onLoad ``ol`` and response code ``rc``, with the threshold T ``t``.
_PAGE_SCORE = APDEX.sql("ol", "rc", "{t:UInt32}")
#: A session's experience score from its pages' scores ``ps``.
_SESSION_SCORE = EXPERIENCE_SCORE.sql("ps")
#: A desktop event's gap since the previous activity point of its session (``prev``).
_GAP = IDLE_GAPS.sql_gap("time", "prev")
_IDLE = IDLE_GAPS.sql_idle("gap", "{idle:UInt64}")
_PRODUCTIVE = IDLE_GAPS.sql_productive("gap", "{idle:UInt64}")


class Series(Engine):
    """Metrics per time bucket and breakdowns over a range."""

    # ---------------------------------------------------------------- time series

    # Each series method returns {bucket start in epoch ms: {metric: value}}. Buckets are
    # toStartOfInterval(time, step) in UTC; empty buckets are absent (the service fills them).
    # With ``total``, key 0 also holds every metric over the whole range ``[lo, hi]``.

    @staticmethod
    def _group_by_bucket(total: bool) -> str:
        return " GROUP BY GROUPING SETS ((b), ())" if total else " GROUP BY b"

    @staticmethod
    def _range_params(project_id: int, lo: datetime, hi: datetime, step_s: int) -> dict[str, Any]:
        return {"p": project_id, "lo": ms(lo), "hi": ms(hi), "step": step_s}

    _IN_RANGE = (
        "time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND time <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
    )
    _BUCKET = "toUnixTimestamp(toStartOfInterval({col}, toIntervalSecond({{step:UInt32}}))) * 1000"

    def player_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        start_types: Sequence[str],
        playing_types: Sequence[str],
        rebuffer_types: Sequence[str],
        error_types: Sequence[str],
        filters: Mapping[str, Sequence[str]] | None = None,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Player metrics per bucket.

        Session metrics (sessions, startup quantiles, error rate) count sessions in the bucket
        of their start; activity metrics (viewers, playing time, rebuffer ratio) use the events
        that happened in each bucket. ``filters`` (``device``, ``video_type``, ``user``: any of
        the values) apply to the session aggregate and to each event respectively.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params.update({"pl": list(playing_types), "rb": list(rebuffer_types)})
        spec = PLAYER
        session_having, event_where = "", ""
        for i, (name, values) in enumerate((filters or {}).items()):
            if name not in spec.filters:
                raise StoreError(f"unknown player filter {name!r}")
            session_having += f" AND {spec.filters[name]} IN {{f{i}:Array(String)}}"
            event_where += f" AND {PLAYER_EVENT_COLUMNS[name]} IN {{f{i}:Array(String)}}"
            params[f"f{i}"] = [str(v) for v in values]
        session_sql = (
            "SELECT " + self._BUCKET.format(col="s") + " AS b, count(), "
            "quantileExact(0.5)(startup), quantileExact(0.95)(startup), countIf(err) "
            # Only sessions with an aggregate row starting in the range can start there (the
            # row holding a session's first event is one): a cheap scan of the aggregate finds
            # them, and only their rows are summed.
            f"FROM (SELECT session, min(start) AS s, {player_sum('d', start_types)} AS startup, "
            f"{player_sum('n', error_types)} > 0 AS err"
            + (spec.filter_select if session_having else "")
            + " FROM player_sessions WHERE project_id = {p:UInt32} "
            "AND session IN (SELECT session FROM player_sessions WHERE project_id = {p:UInt32} "
            "AND start >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
            "AND start <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')) GROUP BY session "
            "HAVING s >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
            "AND s <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
            + session_having
            + ")"
            + self._group_by_bucket(total)
        )
        event_sql = (
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(user), "
            "sumIf(ifNull(duration_ms, 0), type IN {pl:Array(String)}), "
            "sumIf(ifNull(duration_ms, 0), type IN {rb:Array(String)}) "
            "FROM events WHERE project_id = {p:UInt32} AND kind = 'player' AND "
            + self._IN_RANGE
            + event_where
            + self._group_by_bucket(total)
        )
        by_session, by_event = self.query_all([(session_sql, params), (event_sql, params)])
        out: dict[int, dict[str, float]] = {}
        for b, n, p50, p95, errs in by_session:
            out.setdefault(int(b), {}).update(
                {
                    "sessions": int(n),
                    "startup_p50": float(p50),
                    "startup_p95": float(p95),
                    "error_rate": round(errs / n, 4) if n else 0.0,
                }
            )
        for b, viewers, playing, rebuffer in by_event:
            watched = playing + rebuffer
            out.setdefault(int(b), {}).update(
                {
                    "viewers": int(viewers),
                    "playing_time": int(playing),
                    "rebuffer_ratio": round(rebuffer / watched, 4) if watched else 0.0,
                }
            )
        return out

    def player_activity(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[int, dict[str, float]]:
        """Distinct player sessions with an event in each bucket (events inside ``[lo, hi]``).

        ``filters`` (``device``, ``video_type``, ``user``: any of the values) apply to each event.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        where = ""
        for i, (name, values) in enumerate((filters or {}).items()):
            if name not in PLAYER_EVENT_COLUMNS:
                raise StoreError(f"unknown player filter {name!r}")
            where += f" AND {PLAYER_EVENT_COLUMNS[name]} IN {{f{i}:Array(String)}}"
            params[f"f{i}"] = [str(v) for v in values]
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(session) "
            "FROM events WHERE project_id = {p:UInt32} AND kind = 'player' AND "
            + self._IN_RANGE
            + where
            + " GROUP BY b",
            params,
        )
        return {int(b): {"players": int(n)} for b, n in rows}

    def desktop_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        idle_timeout_ms: int,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Idle and productive time per bucket.

        The same rule as ``domain.sessions.desktop_session``: the time between consecutive
        activity points of a session is idle when longer than the timeout, productive otherwise.
        A gap is counted in the bucket of the activity that ends it.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params["idle"] = idle_timeout_ms
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(user), "
            f"{_IDLE}, {_PRODUCTIVE} FROM (SELECT time, user, {_GAP} AS gap "
            f"FROM (SELECT time, user, {IDLE_GAPS.PREVIOUS} AS prev "
            "FROM (SELECT session, time, id, user FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'desktop' AND "
            + self._IN_RANGE
            + " LIMIT 1 BY id)))"
            + self._group_by_bucket(total),
            params,
        )
        return {
            int(b): {"active_users": int(u), "idle_time": int(i), "productive_time": int(pr)}
            for b, u, i, pr in rows
        }

    def endpoint_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        threshold_ms: int,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Sessions, pages and mean experience score per bucket of the session's first page.

        Page and session scores follow ``domain.sessions.page_score`` / ``experience_score``.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params["t"] = threshold_ms
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="s") + " AS b, count(), sum(pages), "
            "avgOrDefault(score) FROM (SELECT session, min(pt) AS s, count() AS pages, "
            f"{_SESSION_SCORE} AS score FROM (SELECT session, page, min(time) AS pt, "
            f"argMin({_PAGE_SCORE}, time) AS ps FROM ("
            "SELECT session, time, JSONExtractString(data, 'page_id') AS page, "
            "JSONExtractUInt(data, 'response_code') AS rc, "
            "JSONExtract(data, 'on_load_ms', 'Nullable(UInt32)') AS ol FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'endpoint' AND "
            + self._IN_RANGE
            + ") GROUP BY session, page) GROUP BY session)"
            + self._group_by_bucket(total),
            params,
        )
        return {
            int(b): {"sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            for b, n, pg, sc in rows
        }

    def channel_series(
        self, project_id: int, lo: datetime, hi: datetime, step_s: int, *, total: bool = False
    ) -> dict[int, dict[str, float]]:
        params = self._range_params(project_id, lo, hi, step_s)
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(id), "
            "uniqExactIf(id, level = 'ERROR') FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'channel' AND "
            + self._IN_RANGE
            + self._group_by_bucket(total),
            params,
        )
        return {int(b): {"events": int(n), "errors": int(e)} for b, n, e in rows}

    #: A series step so long that every instant before 2106 falls in bucket 0: the series
    #: methods called with it return the whole range ``[lo, hi]`` as one bucket keyed 0.
    WHOLE_RANGE_STEP_S = 4_294_967_295

    # ---------------------------------------------------------------- breakdowns

    def distinct_users(self, project_id: int, kind: str, lo: datetime, hi: datetime) -> int:
        """Distinct ``user`` values of a kind's events in ``[lo, hi]``."""
        rows = self.query(
            "SELECT uniqExact(user) FROM events WHERE project_id = {p:UInt32} "
            "AND kind = {k:String} AND " + self._IN_RANGE,
            {"p": project_id, "k": kind, "lo": ms(lo), "hi": ms(hi)},
        )
        return int(rows[0][0])

    def desktop_breakdown(
        self, project_id: int, lo: datetime, hi: datetime, *, idle_timeout_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Active users, idle and productive time over ``[lo, hi]`` per user and per UTC hour.

        Returns ``{"user": [...], "hour": [...]}``: rows keyed ``user`` (the user id, with the
        user's latest ``user_name``) and ``hour`` (0-23). The gap rule is the one of
        ``desktop_series``: a gap between consecutive activity points longer than the timeout
        is idle, shorter is productive, and counts for the user and hour of the activity that
        ends it.
        """
        return self.desktop_overview(project_id, lo, hi, None, idle_timeout_ms=idle_timeout_ms)[1]

    def desktop_overview(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int | None,
        *,
        idle_timeout_ms: int,
    ) -> tuple[dict[int, dict[str, float]], dict[str, list[dict[str, Any]]]]:
        """``desktop_series`` (with the totals, at bucket 0; one bucket without ``step_s``) and
        ``desktop_breakdown`` over ``[lo, hi]`` from one computation of the gaps."""
        # Grouping sets: per user, per hour, per bucket (one bucket without a step) and over the
        # range. grouping(b, user, h) has a bit set for each key a row's set leaves out.
        sets = "(user), (h), (b), ()"
        rows = self.query(
            "SELECT grouping(b, user, h) AS g, b, user, h, uniqExact(user), "
            f"{_IDLE}, {_PRODUCTIVE}, argMaxIf(name, time, name != '') FROM ("
            "SELECT time, user, name, toHour(time) AS h, "
            + (self._BUCKET.format(col="time") if step_s is not None else "0")
            + f" AS b, {_GAP} AS gap "
            f"FROM (SELECT time, user, name, {IDLE_GAPS.PREVIOUS} AS prev "
            "FROM (SELECT session, time, id, user, "
            "JSONExtractString(data, 'user_name') AS name FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'desktop' AND "
            + self._IN_RANGE
            + f" LIMIT 1 BY id))) GROUP BY GROUPING SETS ({sets}) ORDER BY g, user, h, b",
            {
                "p": project_id,
                "lo": ms(lo),
                "hi": ms(hi),
                "idle": idle_timeout_ms,
                "step": step_s or 0,
            },
        )
        series: dict[int, dict[str, float]] = {}
        out: dict[str, list[dict[str, Any]]] = {"user": [], "hour": []}
        for g, b, user, hour, users, idle, productive, name in rows:
            if g in (0b011, 0b111):  # per bucket; over the range (as bucket 0)
                series[int(b) if g == 0b011 else 0] = {
                    "active_users": int(users),
                    "idle_time": int(idle),
                    "productive_time": int(productive),
                }
                continue
            by = "user" if g == 0b101 else "hour"
            out[by].append(
                {
                    by: int(user) if by == "user" else int(hour),
                    "user_name": str(name) if by == "user" else "",
                    "active_users": int(users),
                    "idle_ms": int(idle),
                    "productive_ms": int(productive),
                }
            )
        out["user"].sort(key=lambda r: r["user"])
        return series, out

    # One row per page view (its first event) with the page score of ``endpoint_series``.
    _ENDPOINT_PAGES = (
        "SELECT session, page, min(time) AS pt, argMin(st, time) AS site, "
        "argMin(ti, time) AS title, argMin(ol, time) AS onload, "
        f"argMin({_PAGE_SCORE}, time) AS ps FROM ("
        "SELECT session, time, site AS st, JSONExtractString(data, 'page_id') AS page, "
        "JSONExtractString(data, 'title') AS ti, "
        "JSONExtractUInt(data, 'response_code') AS rc, "
        "JSONExtract(data, 'on_load_ms', 'Nullable(UInt32)') AS ol FROM events "
        "WHERE project_id = {p:UInt32} AND kind = 'endpoint' AND "
        + _IN_RANGE
        + ") GROUP BY session, page"
    )

    def endpoint_sites(
        self, project_id: int, lo: datetime, hi: datetime, *, threshold_ms: int
    ) -> list[dict[str, Any]]:
        """Sessions, pages and mean experience score per visited site, worst score first.

        Sessions and scores as in ``endpoint_series`` (pages loaded inside ``[lo, hi]``, one
        score per page, a session's score the mean of its pages', a site's the mean of its
        sessions').
        """
        rows = self.query(
            "SELECT site, count(), sum(pages), avg(score) FROM (SELECT session, "
            f"argMin(site, pt) AS site, count() AS pages, {_SESSION_SCORE} AS score FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY session) GROUP BY site ORDER BY avg(score), site",
            {"p": project_id, "lo": ms(lo), "hi": ms(hi), "t": threshold_ms},
        )
        return [
            {"site": s, "sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            for s, n, pg, sc in rows
        ]

    def endpoint_overview(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        threshold_ms: int,
        slowest: int = 10,
    ) -> tuple[dict[int, dict[str, float]], list[dict[str, Any]], list[dict[str, Any]]]:
        """``endpoint_series`` (with the totals, at bucket 0), ``endpoint_sites`` and the
        ``slowest`` first rows of ``slowest_pages`` over ``[lo, hi]``, from one pass over the
        range's pages."""
        params = self._range_params(project_id, lo, hi, step_s)
        params["t"] = threshold_ms
        # Each session's pages ride along with its figures, and are spread out again (one row
        # per page, ``n`` its place): session figures count a session's first row only, page
        # figures every row. grouping(b, ss, site, title) has a bit set for each key the
        # row's set leaves out: 0b0111 per bucket, 0b1111 the range, 0b1011 per session site,
        # 0b1100 per page site and title.
        rows = self.query(
            "SELECT grouping(b, ss, site, title) AS g, b, ss, site, title, countIf(n = 1), "
            "sumIf(pages, n = 1), avgOrDefaultIf(score, n = 1), count(), "
            "quantileExact(0.5)(onload), max(onload), round(avg(ps), 3), "
            "argMax(session, onload) FROM (SELECT session, b, ss, pages, score, n, "
            "p.1 AS site, p.2 AS title, p.3 AS onload, p.4 AS ps FROM (SELECT session, "
            + self._BUCKET.format(col="s")
            + " AS b, ss, pages, score, pgs FROM (SELECT session, min(pt) AS s, "
            f"argMin(site, pt) AS ss, count() AS pages, {_SESSION_SCORE} AS score, "
            "groupArray((site, title, onload, ps)) AS pgs FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY session)) ARRAY JOIN pgs AS p, arrayEnumerate(pgs) AS n) "
            "GROUP BY GROUPING SETS ((b), (), (ss), (site, title))",
            params,
        )
        series: dict[int, dict[str, float]] = {}
        sites: list[tuple[float, str, dict[str, Any]]] = []
        pages: list[dict[str, Any]] = []
        for g, b, ss, site, title, n, pg, sc, loads, p50, worst, score, session in rows:
            figures = {"sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            if g in (0b0111, 0b1111):  # per bucket; over the range (as bucket 0)
                series[int(b) if g == 0b0111 else 0] = figures
            elif g == 0b1011:
                sites.append((sc, ss, {"site": ss, **figures}))
            else:
                pages.append(_slow_page(site, title, loads, p50, worst, score, session))
        sites.sort(key=lambda x: (x[0], x[1]))  # worst score first, as endpoint_sites
        pages.sort(key=lambda r: (-r["on_load_p50_ms"], r["site"], r["title"]))
        return series, [row for _, _, row in sites], pages[:slowest]

    def slowest_pages(
        self, project_id: int, lo: datetime, hi: datetime, *, threshold_ms: int, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Pages (site and title) loaded in ``[lo, hi]``, slowest median onLoad first.

        Each page view counts once (its first event). Rows carry the number of loads, median
        and slowest onLoad in ms, mean page score, and the session of the slowest load.
        """
        rows = self.query(
            "SELECT site, title, count(), quantileExact(0.5)(onload), max(onload), "
            "round(avg(ps), 3), argMax(session, onload) FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY site, title ORDER BY quantileExact(0.5)(onload) DESC, site, title "
            f"LIMIT {int(limit)}",
            {"p": project_id, "lo": ms(lo), "hi": ms(hi), "t": threshold_ms},
        )
        return [_slow_page(*row) for row in rows]
