"""Schema version 1: projects, keys, users, events and the session aggregates.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View

__all__ = ["MIGRATION"]


_T = "DateTime64(3, 'UTC')"

EVENTS = Table(
    "events",
    "ReplacingMergeTree",
    f"""project_id UInt32, kind LowCardinality(String), session String, id String,
    time {_T}, type LowCardinality(String), duration_ms Nullable(UInt64), user String,
    device LowCardinality(String), video_type LowCardinality(String),
    level LowCardinality(String), site String, data String, seq UInt32 DEFAULT 0,
    ingested_at {_T} DEFAULT now64(3)""",
    "PARTITION BY toYYYYMM(time) ORDER BY (project_id, kind, session, time, id)",
    sharding_key="cityHash64(project_id, kind, session)",
)

EVENT_IDS = Table(
    "event_ids",
    "ReplacingMergeTree",
    "project_id UInt32, id String, kind LowCardinality(String), session String",
    "ORDER BY (project_id, id)",
    sharding_key="cityHash64(project_id, id)",
)

PLAYER_SESSIONS = Table(
    "player_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session String,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    user SimpleAggregateFunction(max, String),
    origin SimpleAggregateFunction(max, String), os SimpleAggregateFunction(max, String),
    device SimpleAggregateFunction(max, String), video_type SimpleAggregateFunction(max, String),
    durations AggregateFunction(sumMap, Array(String), Array(UInt64)),
    counts AggregateFunction(sumMap, Array(String), Array(UInt64)),
    events AggregateFunction(uniqExact, String)""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'player', session)",
)

DESKTOP_SESSIONS = Table(
    "desktop_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session UInt32,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    login SimpleAggregateFunction(min, {_T}), logout SimpleAggregateFunction(max, {_T}),
    user_id SimpleAggregateFunction(max, UInt32), user_name SimpleAggregateFunction(max, String),
    client_guid SimpleAggregateFunction(max, String),
    client_name SimpleAggregateFunction(max, String),
    events AggregateFunction(uniqExact, String)""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'desktop', toString(session))",
)

ENDPOINT_SESSIONS = Table(
    "endpoint_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session String,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    agent_id SimpleAggregateFunction(max, String),
    visited_site SimpleAggregateFunction(max, String),
    protocol SimpleAggregateFunction(max, String), port SimpleAggregateFunction(max, UInt16),
    source_addr SimpleAggregateFunction(max, String),
    org_name SimpleAggregateFunction(max, String),
    committed SimpleAggregateFunction(max, {_T}),
    pages AggregateFunction(uniqExact, String), events AggregateFunction(uniqExact, String)""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'endpoint', session)",
)

CHANNEL_STATS = Table(
    "channel_stats",
    "AggregatingMergeTree",
    f"""project_id UInt32, channel String,
    first SimpleAggregateFunction(min, {_T}), last SimpleAggregateFunction(max, {_T}),
    last_publish_start SimpleAggregateFunction(max, {_T}),
    last_publish_end SimpleAggregateFunction(max, {_T}),
    errors AggregateFunction(uniqExactIf, String, UInt8),
    events AggregateFunction(uniqExact, String)""",
    "ORDER BY (project_id, channel)",
    sharding_key="cityHash64(project_id, 'channel', channel)",
)

_ZERO = "toDateTime64(0, 3, 'UTC')"
_FAR = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"

VIEWS = [
    View(
        "event_ids_mv",
        "event_ids",
        "SELECT project_id, id, kind, session FROM events",
    ),
    View(
        "player_sessions_mv",
        "player_sessions",
        """SELECT project_id, session, min(time) AS start, max(time) AS end, max(user) AS user,
        max(JSONExtractString(data, 'origin')) AS origin, max(JSONExtractString(data, 'os')) AS os,
        max(toString(device)) AS device, max(toString(video_type)) AS video_type,
        sumMapState(arrayMap(x -> toString(x), [type]), [ifNull(duration_ms, 0)]) AS durations,
        sumMapState(arrayMap(x -> toString(x), [type]), [toUInt64(1)]) AS counts,
        uniqExactState(id) AS events
        FROM events WHERE kind = 'player' GROUP BY project_id, session""",
    ),
    View(
        "desktop_sessions_mv",
        "desktop_sessions",
        f"""SELECT project_id, toUInt32(session) AS session, min(time) AS start,
        max(time) AS end,
        min(if(type = 'login', time, {_FAR})) AS login,
        max(if(type = 'logout', time, {_ZERO})) AS logout,
        max(toUInt32(user)) AS user_id,
        max(JSONExtractString(data, 'user_name')) AS user_name,
        max(JSONExtractString(data, 'client_guid')) AS client_guid,
        max(JSONExtractString(data, 'client_name')) AS client_name,
        uniqExactState(id) AS events
        FROM events WHERE kind = 'desktop' GROUP BY project_id, session""",
    ),
    View(
        "endpoint_sessions_mv",
        "endpoint_sessions",
        """SELECT project_id, session, min(time) AS start, max(time) AS end,
        max(user) AS agent_id, max(site) AS visited_site,
        max(JSONExtractString(data, 'protocol')) AS protocol,
        max(toUInt16(JSONExtractUInt(data, 'port'))) AS port,
        max(JSONExtractString(data, 'source_addr')) AS source_addr,
        max(JSONExtractString(data, 'org_name')) AS org_name,
        max(ingested_at) AS committed,
        uniqExactState(JSONExtractString(data, 'page_id')) AS pages,
        uniqExactState(id) AS events
        FROM events WHERE kind = 'endpoint' GROUP BY project_id, session""",
    ),
    View(
        "channel_stats_mv",
        "channel_stats",
        f"""SELECT project_id, session AS channel, min(time) AS first, max(time) AS last,
        max(if(type = 'PUBLISH_START', time, {_ZERO})) AS last_publish_start,
        max(if(type = 'PUBLISH_END', time, {_ZERO})) AS last_publish_end,
        uniqExactIfState(id, toUInt8(level = 'ERROR')) AS errors,
        uniqExactState(id) AS events
        FROM events WHERE kind = 'channel' GROUP BY project_id, session""",
    ),
]

PROJECTS = Table(
    "projects",
    "ReplacingMergeTree",
    f"""id UInt32, name String, created_at {_T},
    idle_timeout_s UInt32 DEFAULT 900, apdex_threshold_ms UInt32 DEFAULT 2000,
    organization String DEFAULT '', version UInt64""",
    "ORDER BY id",
    engine_args="version",
    sharding_key="id",
)

KEYS = Table(
    "api_keys",
    "ReplacingMergeTree",
    f"""key_id String, project_id UInt32, kind LowCardinality(String), secret_hash String,
    secret_enc String, name String, created_at {_T}, revoked UInt8, version UInt64""",
    "ORDER BY key_id",
    engine_args="version",
    sharding_key="cityHash64(key_id)",
)

USERS = Table(
    "users",
    "ReplacingMergeTree",
    f"""email String, token_hash String, project_ids Array(UInt32), organization String,
    created_at {_T}, version UInt64""",
    "ORDER BY email",
    engine_args="version",
    sharding_key="cityHash64(email)",
)


def _initial(p: EngineProfile) -> list[str]:
    out: list[str] = []
    for table in (
        PROJECTS,
        KEYS,
        USERS,
        EVENTS,
        EVENT_IDS,
        PLAYER_SESSIONS,
        DESKTOP_SESSIONS,
        ENDPOINT_SESSIONS,
        CHANNEL_STATS,
    ):
        out.extend(table.create(p))
    for view in VIEWS:
        out.extend(view.create(p))
    return out


MIGRATION = Migration(
    1, "initial schema: projects, keys, users, events, session aggregates", _initial
)
