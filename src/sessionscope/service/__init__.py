"""The core queries every edge uses: sessions of each kind with their metrics, one session with
its events, time series. Native API, CLI, dashboard and compat modules all call
:class:`SessionService`; it combines store aggregates (selection, ordering, paging) with the
pure definitions of ``domain.sessions`` (metrics) so each rule lives once.

- :mod:`~sessionscope.service.sessions`: lists of sessions, one session;
- :mod:`~sessionscope.service.series`: time series, totals, breakdowns;
- :mod:`~sessionscope.service.events`: events as stored, channel summaries;
- :mod:`~sessionscope.service.cursor`: the cursor of session lists;
- :mod:`~sessionscope.service.serialize`: the native JSON shape of a session.
"""

from __future__ import annotations

from sessionscope.service.cursor import CursorError, decode_cursor, encode_cursor
from sessionscope.service.events import EventQueries
from sessionscope.service.serialize import session_to_dict
from sessionscope.service.series import CURRENT_WINDOW, METRICS, SeriesQueries
from sessionscope.service.sessions import (
    FILTERS,
    AnySession,
    ChannelActivity,
    SessionLists,
    SessionPage,
    SessionQuery,
)
from sessionscope.store.clickhouse import ClickHouseStore

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


class SessionService(SessionLists, SeriesQueries, EventQueries):
    """Sessions and metrics of a project, over one store."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
