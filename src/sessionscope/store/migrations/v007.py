"""Schema version 7: inserted blocks deduplicated by token in the events table and every view.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration

__all__ = ["DEDUPLICATED_TABLES", "DEDUPLICATION_WINDOW", "MIGRATION"]


#: The tables one insert into ``events`` writes: the events table and every view's target.
DEDUPLICATED_TABLES = (
    "events",
    "event_ids",
    "player_sessions",
    "desktop_sessions",
    "endpoint_sessions",
    "channel_stats",
    "session_index",
)

#: How many of its last inserted blocks' tokens each of those tables remembers on one node.
DEDUPLICATION_WINDOW = 1000


def _v7(p: EngineProfile) -> list[str]:
    """Each table an insert writes remembers its last blocks' deduplication tokens, so a block
    written again (the ingest loader after a crash or a failed view) adds nothing twice.

    Replicated tables (a cluster) keep such a window by default
    (``replicated_deduplication_window``); one node needs it set. A migration that rebuilds
    one of these tables must set it on the new table too.
    """
    if p.cluster:
        return []
    return [
        f"ALTER TABLE {table} MODIFY SETTING "
        f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        for table in DEDUPLICATED_TABLES
    ]


MIGRATION = Migration(
    7, "inserted blocks deduplicated by token in the events table and every view", _v7
)
