"""Schema version 5: player sessions with a sum column per action type.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View, rebuild

__all__ = ["MIGRATION", "PLAYER_TYPES_V5"]


_T = "DateTime64(3, 'UTC')"
_SMALL_GRANULES = "index_granularity = 256, min_compress_block_size = 4096, "
_SMALL_GRANULES += "max_compress_block_size = 16384"

#: The player action types of schema version 5, each with a duration sum and an event count
#: column (``d_<type>``, ``n_<type>``). Written out here, not imported from the domain: a
#: migration is a record of one schema version (``tests/store`` checks that every type the
#: domain accepts has its columns).
PLAYER_TYPES_V5: tuple[str, ...] = (
    "player_start",
    "startup",
    "playing",
    "paused",
    "seeking",
    "rebuffering",
    "ended",
    "error",
    "next_track",
    "prev_track",
)
_PER_TYPE_COLUMNS = ", ".join(
    f"{prefix}_{t} SimpleAggregateFunction(sum, UInt64)"
    for t in PLAYER_TYPES_V5
    for prefix in ("d", "n")
)
#: Player aggregates with a plain sum column per action type (duration and count) instead of
#: the two ``sumMap`` maps of version 3: summing a map per row was most of the cost of reading
#: many sessions' sums at once (the overview's startup and error figures: about 2x measured on
#: the benchmark store), and a page reads only the columns its metrics use.
PLAYER_SESSIONS_V5 = Table(
    "player_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session String,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    user SimpleAggregateFunction(max, String),
    origin SimpleAggregateFunction(max, String), os SimpleAggregateFunction(max, String),
    device SimpleAggregateFunction(max, String), video_type SimpleAggregateFunction(max, String),
    events SimpleAggregateFunction(sum, UInt64), {_PER_TYPE_COLUMNS}""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'player', session)",
    settings=_SMALL_GRANULES,
)
PLAYER_VIEW_V5 = View(
    "player_sessions_mv",
    "player_sessions",
    """SELECT project_id, session, min(time) AS start, max(time) AS end, max(user) AS user,
        max(JSONExtractString(data, 'origin')) AS origin, max(JSONExtractString(data, 'os')) AS os,
        max(toString(device)) AS device, max(toString(video_type)) AS video_type,
        toUInt64(count()) AS events, """
    + ", ".join(
        f"sumIf(ifNull(duration_ms, 0), type = '{t}') AS d_{t}, "
        f"toUInt64(countIf(type = '{t}')) AS n_{t}"
        for t in PLAYER_TYPES_V5
    )
    + " FROM events WHERE kind = 'player' GROUP BY project_id, session",
)


def _v5(p: EngineProfile) -> list[str]:
    """Player aggregates with a sum column per action type (see ``PLAYER_SESSIONS_V5``)."""
    columns = "project_id, session, start, end, user, origin, os, device, video_type, events, "
    columns += ", ".join(f"d_{t}, n_{t}" for t in PLAYER_TYPES_V5)
    return rebuild(PLAYER_SESSIONS_V5, PLAYER_VIEW_V5, columns, 5, p)


MIGRATION = Migration(5, "player sessions with a sum column per action type", _v5)
