"""Events as stored: a session's events, filtered lists of a kind's events, channel summaries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["EventQueries"]


class EventQueries:
    """Reads of a project's events, for edges that answer with events themselves."""

    store: ClickHouseStore

    def session_events(
        self, project: Project, kind: str, sessions: Iterable[str]
    ) -> dict[str, list[Event]]:
        """The events of the given sessions, each in time order."""
        return self.store.session_events(project.id, kind, sessions)

    def events(
        self,
        project: Project,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Event]:
        """A kind's events, filtered by time (inclusive), sessions and types."""
        return self.store.events(
            project.id,
            kind,
            start=start,
            end=end,
            sessions=sessions,
            types=types,
            newest_first=newest_first,
            limit=limit,
            offset=offset,
        )

    def count_events(
        self,
        project: Project,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
    ) -> int:
        """How many distinct events ``events`` would list without a limit."""
        return self.store.count_matching_events(
            project.id, kind, start=start, end=end, sessions=sessions, types=types
        )

    def channels(self, project: Project) -> list[dict[str, Any]]:
        """Every channel's summary (first and last event, live, errors, events)."""
        return self.store.channels(project.id)
