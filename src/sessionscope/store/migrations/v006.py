"""Schema version 6: session index start rows only where an insert may start its session.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, View

__all__ = ["MIGRATION"]


#: The session index's start rows only where an insert may hold its session's start: events
#: carry ``starts`` (1: this row's insert may hold the start of its session, which a writer
#: that knows every stored session's start can rule out, see ``store.sessionstarts``; 1 by
#: default, so a writer that does not know adds the row as before). Without it a session sent
#: over many inserts (as events arrive while it goes on) left one start row per insert.
SESSION_INDEX_VIEW_V6 = View(
    "session_index_mv",
    "session_index",
    """SELECT project_id, kind, edge, t, session FROM (
        SELECT project_id, kind, session, min(time) AS s, max(time) AS e, max(starts) AS f
        FROM events WHERE kind != 'channel' GROUP BY project_id, kind, session)
        ARRAY JOIN if(f = 1, [toUInt8(1), toUInt8(2)], [toUInt8(2)]) AS edge,
        if(f = 1, [s, e], [e]) AS t""",
)


def _v6(p: EngineProfile) -> list[str]:
    """Events say whether their insert may start their session; the index follows."""
    local = p.local_name("events")
    tables = [local, "events"] if p.cluster else [local]
    out = [
        f"ALTER TABLE {table}{p.on_cluster} ADD COLUMN IF NOT EXISTS starts UInt8 DEFAULT 1"
        for table in tables
    ]
    out.append(f"DROP VIEW IF EXISTS session_index_mv{p.on_cluster} SYNC")
    out.extend(SESSION_INDEX_VIEW_V6.create(p))
    return out


MIGRATION = Migration(6, "session index start rows only where an insert may start its session", _v6)
