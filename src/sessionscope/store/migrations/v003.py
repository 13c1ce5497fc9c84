"""Schema version 3: player sessions in plain columns.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View, rebuild

__all__ = ["MIGRATION"]


_T = "DateTime64(3, 'UTC')"

#: Player aggregates with plain columns only. Their per-type sums are ``SimpleAggregateFunction``
#: maps (the same sums as before, stored as values instead of function states), and the event
#: count is the sum of the per-type counts: a page of sessions whose ids are scattered over the
#: table (random ids, as real players send) reads one granule per session, and deserialising
#: states for whole granules was most of its cost (about 5x measured on the benchmark store).
#: Counting rows instead of distinct ids is exact because ingest stores an id at most once (the
#: per-type sums always relied on that). Small granules, for the same scattered reads.
_SUMS = "SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(UInt64)))"
PLAYER_SESSIONS_V3 = Table(
    "player_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session String,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    user SimpleAggregateFunction(max, String),
    origin SimpleAggregateFunction(max, String), os SimpleAggregateFunction(max, String),
    device SimpleAggregateFunction(max, String), video_type SimpleAggregateFunction(max, String),
    durations {_SUMS}, counts {_SUMS}""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'player', session)",
    settings="index_granularity = 256, min_compress_block_size = 4096, "
    "max_compress_block_size = 16384",
)
PLAYER_VIEW_V3 = View(
    "player_sessions_mv",
    "player_sessions",
    """SELECT project_id, session, min(time) AS start, max(time) AS end, max(user) AS user,
        max(JSONExtractString(data, 'origin')) AS origin, max(JSONExtractString(data, 'os')) AS os,
        max(toString(device)) AS device, max(toString(video_type)) AS video_type,
        sumMap(arrayMap(x -> toString(x), [type]), [ifNull(duration_ms, 0)]) AS durations,
        sumMap(arrayMap(x -> toString(x), [type]), [toUInt64(1)]) AS counts
        FROM events WHERE kind = 'player' GROUP BY project_id, session""",
)


def _v3(p: EngineProfile) -> list[str]:
    """Player aggregates with plain columns (see ``PLAYER_SESSIONS_V3``)."""
    columns = "project_id, session, start, end, user, origin, os, device, video_type, "
    return rebuild(PLAYER_SESSIONS_V3, PLAYER_VIEW_V3, columns + "durations, counts", 3, p)


MIGRATION = Migration(3, "player sessions in plain columns, for pages of scattered sessions", _v3)
