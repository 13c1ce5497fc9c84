"""Today's schema (version 8), declared whole: what a fresh store is created from.

A store made before is brought here by the migrations (``sessionscope.store.migrations``),
replayed in order; ``tests/store/test_store_schema.py`` proves that both give the same tables
(their columns and ``engine_full``) and views. A new migration changes this module with it.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Table, View

__all__ = ["PLAYER_TYPES", "TABLES", "VERSION", "VIEWS", "statements"]

#: The migration version this schema is.
VERSION = 8

_T = "DateTime64(3, 'UTC')"
_ZERO = "toDateTime64(0, 3, 'UTC')"
_FAR = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"
_ORG = "JSONExtractString(data, 'org_name')"
#: Small granules for the session aggregates: pages read scattered sessions.
_SMALL_GRANULES = "index_granularity = 256, min_compress_block_size = 4096, "
_SMALL_GRANULES += "max_compress_block_size = 16384"
#: How many of its last blocks' deduplication tokens each table an insert writes remembers, on
#: one node (replicated tables keep such a window by default).
_DEDUPLICATION = "non_replicated_deduplication_window = 1000"
#: The default, written out where the deduplication window follows (where an upgraded store
#: has it, as the engine wrote it when the window was added).
_DEFAULT_GRANULES = "index_granularity = 8192"

#: The player action types, each with a duration sum and an event count column
#: (``d_<type>``, ``n_<type>``).
PLAYER_TYPES: tuple[str, ...] = (
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
    for t in PLAYER_TYPES
    for prefix in ("d", "n")
)

PROJECTS = Table(
    "projects",
    "ReplacingMergeTree",
    f"""id UInt32, name String, created_at {_T},
    idle_timeout_s UInt32 DEFAULT 900, apdex_threshold_ms UInt32 DEFAULT 2000,
    organization String DEFAULT '', version UInt64,
    signin_generation UInt32 DEFAULT 0""",
    "ORDER BY id",
    engine_args="version",
    sharding_key="id",
)

KEYS = Table(
    "api_keys",
    "ReplacingMergeTree",
    f"""key_id String, project_id UInt32, kind LowCardinality(String), secret_hash String,
    secret_enc String, name String, created_at {_T}, revoked UInt8, version UInt64,
    scope LowCardinality(String) DEFAULT 'full'""",
    "ORDER BY key_id",
    engine_args="version",
    sharding_key="cityHash64(key_id)",
)

USERS = Table(
    "users",
    "ReplacingMergeTree",
    f"""email String, token_hash String, project_ids Array(UInt32), organization String,
    created_at {_T}, version UInt64, revoked UInt8 DEFAULT 0""",
    "ORDER BY email",
    engine_args="version",
    sharding_key="cityHash64(email)",
)

EVENTS = Table(
    "events",
    "ReplacingMergeTree",
    f"""project_id UInt32, kind LowCardinality(String), session String, id String,
    time {_T}, type LowCardinality(String), duration_ms Nullable(UInt64), user String,
    device LowCardinality(String), video_type LowCardinality(String),
    level LowCardinality(String), site String, data String, seq UInt32 DEFAULT 0,
    ingested_at {_T} DEFAULT now64(3), starts UInt8 DEFAULT 1""",
    "PARTITION BY toYYYYMM(time) ORDER BY (project_id, kind, session, time, id)",
    sharding_key="cityHash64(project_id, kind, session)",
    settings=_DEFAULT_GRANULES,
    single_node_settings=_DEDUPLICATION,
)

EVENT_IDS = Table(
    "event_ids",
    "ReplacingMergeTree",
    "project_id UInt32, id String, kind LowCardinality(String), session String",
    "ORDER BY (project_id, id)",
    sharding_key="cityHash64(project_id, id)",
    settings=_DEFAULT_GRANULES,
    single_node_settings=_DEDUPLICATION,
)

PLAYER_SESSIONS = Table(
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
    single_node_settings=_DEDUPLICATION,
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
    events SimpleAggregateFunction(sum, UInt64)""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'desktop', toString(session))",
    settings=_SMALL_GRANULES,
    single_node_settings=_DEDUPLICATION,
)

_FIRST = f"Tuple({_T}, String, String, String, String, UInt16, String)"
_FIRST_ORG = f"Tuple({_T}, String, String)"

ENDPOINT_SESSIONS = Table(
    "endpoint_sessions",
    "AggregatingMergeTree",
    f"""project_id UInt32, session String,
    start SimpleAggregateFunction(min, {_T}), end SimpleAggregateFunction(max, {_T}),
    first SimpleAggregateFunction(min, {_FIRST}),
    first_org SimpleAggregateFunction(min, {_FIRST_ORG}),
    committed SimpleAggregateFunction(max, {_T}),
    pages SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    events SimpleAggregateFunction(sum, UInt64)""",
    "ORDER BY (project_id, session)",
    sharding_key="cityHash64(project_id, 'endpoint', session)",
    settings=_SMALL_GRANULES,
    single_node_settings=_DEDUPLICATION,
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
    settings=_DEFAULT_GRANULES,
    single_node_settings=_DEDUPLICATION,
)

#: The sessions of every kind but channels by time (see migration 2 and 6).
SESSION_INDEX = Table(
    "session_index",
    "ReplacingMergeTree",
    f"project_id UInt32, kind LowCardinality(String), edge UInt8, t {_T}, session String",
    "ORDER BY (project_id, kind, edge, t, session)",
    sharding_key="cityHash64(project_id, kind, session)",
    settings=_DEFAULT_GRANULES,
    single_node_settings=_DEDUPLICATION,
)

TABLES: tuple[Table, ...] = (
    PROJECTS,
    KEYS,
    USERS,
    EVENTS,
    EVENT_IDS,
    PLAYER_SESSIONS,
    DESKTOP_SESSIONS,
    ENDPOINT_SESSIONS,
    CHANNEL_STATS,
    SESSION_INDEX,
)

VIEWS: tuple[View, ...] = (
    View("event_ids_mv", "event_ids", "SELECT project_id, id, kind, session FROM events"),
    View(
        "player_sessions_mv",
        "player_sessions",
        """SELECT project_id, session, min(time) AS start, max(time) AS end, max(user) AS user,
        max(JSONExtractString(data, 'origin')) AS origin, max(JSONExtractString(data, 'os')) AS os,
        max(toString(device)) AS device, max(toString(video_type)) AS video_type,
        toUInt64(count()) AS events, """
        + ", ".join(
            f"sumIf(ifNull(duration_ms, 0), type = '{t}') AS d_{t}, "
            f"toUInt64(countIf(type = '{t}')) AS n_{t}"
            for t in PLAYER_TYPES
        )
        + " FROM events WHERE kind = 'player' GROUP BY project_id, session",
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
        toUInt64(count()) AS events
        FROM events WHERE kind = 'desktop' GROUP BY project_id, session""",
    ),
    View(
        "endpoint_sessions_mv",
        "endpoint_sessions",
        # The first page's values: the least (time, id, values...) tuple; the first non-empty
        # organisation likewise, rows without one standing aside as (far future, '', '').
        "SELECT project_id, session, min(time) AS start, max(time) AS end, min(tuple(time, id, "
        "user, site, JSONExtractString(data, 'protocol'), "
        "toUInt16(JSONExtractUInt(data, 'port')), JSONExtractString(data, 'source_addr')"
        f")) AS first, min(if({_ORG} != '', tuple(time, id, {_ORG}), tuple({_FAR}, '', ''))) "
        """AS first_org, max(ingested_at) AS committed,
        groupUniqArray(JSONExtractString(data, 'page_id')) AS pages,
        toUInt64(count()) AS events
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
    View(
        "session_index_mv",
        "session_index",
        """SELECT project_id, kind, edge, t, session FROM (
        SELECT project_id, kind, session, min(time) AS s, max(time) AS e, max(starts) AS f
        FROM events WHERE kind != 'channel' GROUP BY project_id, kind, session)
        ARRAY JOIN if(f = 1, [toUInt8(1), toUInt8(2)], [toUInt8(2)]) AS edge,
        if(f = 1, [s, e], [e]) AS t""",
    ),
)


def statements(p: EngineProfile) -> list[str]:
    """The statements creating today's schema in an empty database."""
    out: list[str] = []
    for table in TABLES:
        out.extend(table.create(p))
    for view in VIEWS:
        out.extend(view.create(p))
    return out
