"""Schema and versioned migrations, rendered for one node or for a cluster.

Every table is declared once with its *family* of engine (``MergeTree``, ``ReplacingMergeTree``,
``AggregatingMergeTree``). :class:`EngineProfile` renders the family as a plain engine on one
node (the embedded engine or a single server), or, on a cluster, as a ``Replicated*`` engine on
each shard's ``<name>_local`` table behind a ``Distributed`` table named ``<name>``. Query SQL
always names ``<name>``, so it is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "PLAYER_TYPES_V5", "EngineProfile", "Migration", "Table"]


@dataclass(frozen=True, slots=True)
class EngineProfile:
    """How table engines are rendered: single node when ``cluster`` is empty."""

    cluster: str = ""
    fsync: bool = True

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local_name(self, name: str) -> str:
        return f"{name}_local" if self.cluster else name

    def engine(self, family: str, name: str, args: str = "") -> str:
        if not self.cluster:
            return f"{family}({args})"
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}', '{{replica}}'"
        return f"Replicated{family}({path}{', ' + args if args else ''})"

    def settings(self, extra: str = "") -> str:
        # Durable acknowledgement: fsync each inserted part and its directory before the insert
        # returns. Replicated tables get durability from the quorum instead (see the store).
        found = [extra] if extra else []
        if self.fsync and not self.cluster:
            found.insert(0, "fsync_after_insert = 1, fsync_part_directory = 1")
        return f" SETTINGS {', '.join(found)}" if found else ""


@dataclass(frozen=True, slots=True)
class Table:
    """A table declared once: ``columns`` and ``tail`` (ORDER BY, PARTITION BY ...)."""

    name: str
    family: str
    columns: str
    tail: str
    engine_args: str = ""
    sharding_key: str = "rand()"
    #: Table settings besides the profile's (``index_granularity = 256, ...``).
    settings: str = ""

    def create(self, p: EngineProfile, replica_path: str = "") -> list[str]:
        """The statements creating the table (``replica_path``: the name in the replication
        path on a cluster, when not the table's own)."""
        local = p.local_name(self.name)
        engine = p.engine(self.family, replica_path or self.name, self.engine_args)
        sql = [
            f"CREATE TABLE IF NOT EXISTS {local}{p.on_cluster} ({self.columns}) "
            f"ENGINE = {engine} {self.tail}{p.settings(self.settings)}"
        ]
        if p.cluster:
            sql.append(
                f"CREATE TABLE IF NOT EXISTS {self.name}{p.on_cluster} AS {local} "
                f"ENGINE = Distributed({p.cluster}, currentDatabase(), {local}, "
                f"{self.sharding_key})"
            )
        return sql


@dataclass(frozen=True, slots=True)
class View:
    """A materialized view from ``source`` into ``target`` (local tables on a cluster)."""

    name: str
    target: str
    select: str

    def create(self, p: EngineProfile) -> list[str]:
        # On a cluster each shard aggregates its own rows: the view reads the local events
        # table and writes the local aggregate table; reads merge through Distributed.
        select = self.select.replace("FROM events", f"FROM {p.local_name('events')}")
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.name}{p.on_cluster} "
            f"TO {p.local_name(self.target)} AS {select}"
        ]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[EngineProfile], list[str]]


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


# ------------------------------------------------------------------------------ version 2

#: Endpoint sessions show their first page's values (see ``domain.sessions.endpoint_session``):
#: the aggregate keeps those values, first by ``(time, id)``, so that filters match what is
#: shown. ``org_name`` is the first non-empty one.
_FIRST_KEY = f"Tuple({_T}, String)"
ENDPOINT_FIRST_COLUMNS: list[tuple[str, str, str]] = [
    ("first_agent_id", "String", "user"),
    ("first_visited_site", "String", "site"),
    ("first_protocol", "String", "JSONExtractString(data, 'protocol')"),
    ("first_port", "UInt16", "toUInt16(JSONExtractUInt(data, 'port'))"),
    ("first_source_addr", "String", "JSONExtractString(data, 'source_addr')"),
]
_ORG = "JSONExtractString(data, 'org_name')"

ENDPOINT_VIEW_V2 = View(
    "endpoint_sessions_mv",
    "endpoint_sessions",
    "SELECT project_id, session, min(time) AS start, max(time) AS end, "
    + "".join(
        f"argMinState({expr}, (time, id)) AS {name}, " for name, _, expr in ENDPOINT_FIRST_COLUMNS
    )
    + f"argMinIfState({_ORG}, (time, id), {_ORG} != '') AS first_org_name, "
    """max(ingested_at) AS committed,
        uniqExactState(JSONExtractString(data, 'page_id')) AS pages,
        uniqExactState(id) AS events
        FROM events WHERE kind = 'endpoint' GROUP BY project_id, session""",
)

#: The sessions of every kind but channels by time: per insert, one row at the first and one at
#: the last event time of each session it touched. A session's true start is the least of its
#: ``edge = 1`` rows and its true end the greatest of its ``edge = 2`` rows, so the newest (or
#: oldest) sessions are found by reading the index in order instead of aggregating them all.
SESSION_INDEX = Table(
    "session_index",
    "ReplacingMergeTree",
    f"project_id UInt32, kind LowCardinality(String), edge UInt8, t {_T}, session String",
    "ORDER BY (project_id, kind, edge, t, session)",
    sharding_key="cityHash64(project_id, kind, session)",
)
_SESSION_INDEX_SELECT = """SELECT project_id, kind, edge, t, session FROM (
        SELECT project_id, kind, session, min(time) AS s, max(time) AS e FROM events
        WHERE kind != 'channel' GROUP BY project_id, kind, session)
        ARRAY JOIN [toUInt8(1), toUInt8(2)] AS edge, [s, e] AS t"""
SESSION_INDEX_VIEW = View("session_index_mv", "session_index", _SESSION_INDEX_SELECT)


def _v2(p: EngineProfile) -> list[str]:
    """Endpoint aggregates keep their first page's values; the session time index."""
    local = p.local_name("endpoint_sessions")
    tables = [local, "endpoint_sessions"] if p.cluster else [local]
    out = [f"DROP VIEW IF EXISTS endpoint_sessions_mv{p.on_cluster} SYNC"]
    for table in tables:
        adds = [
            f"ADD COLUMN IF NOT EXISTS {name} AggregateFunction(argMin, {typ}, {_FIRST_KEY})"
            for name, typ, _ in ENDPOINT_FIRST_COLUMNS
        ]
        adds.append(
            "ADD COLUMN IF NOT EXISTS first_org_name "
            f"AggregateFunction(argMinIf, String, {_FIRST_KEY}, UInt8)"
        )
        drops = [
            f"DROP COLUMN IF EXISTS {name}"
            for name in ("agent_id", "visited_site", "protocol", "port", "source_addr", "org_name")
        ]
        out.append(f"ALTER TABLE {table}{p.on_cluster} {', '.join(adds + drops)}")
    out.extend(ENDPOINT_VIEW_V2.create(p))
    # Fill the new columns for what is already stored: every function of the aggregate is
    # idempotent (min, max, uniqExact, argMin), so the sessions' rows can simply be added again.
    columns = ["project_id", "session", "start", "end"]
    columns += [name for name, _, _ in ENDPOINT_FIRST_COLUMNS]
    columns += ["first_org_name", "committed", "pages", "events"]
    out.append(f"INSERT INTO endpoint_sessions ({', '.join(columns)}) {ENDPOINT_VIEW_V2.select}")
    out.extend(SESSION_INDEX.create(p))
    out.extend(SESSION_INDEX_VIEW.create(p))
    out.append(
        f"INSERT INTO session_index (project_id, kind, edge, t, session) {_SESSION_INDEX_SELECT}"
    )
    return out


# ------------------------------------------------------------------------------ version 3

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


def rebuild(table: Table, view: View, columns: str, version: int, p: EngineProfile) -> list[str]:
    """Replace an aggregate table by ``table`` (a new layout) filled from the events.

    The new table is built beside the old one (``<name>_v<version>``) from ``events`` with the
    view's query, swapped in, and the old one dropped. Every step can run again after an
    interruption (the fill always starts from the events), so a migration cut short is simply
    applied again at the next start.
    """
    staging = Table(
        f"{table.name}_v{version}",
        table.family,
        table.columns,
        table.tail,
        table.engine_args,
        table.sharding_key,
        table.settings,
    )
    local, staged = p.local_name(table.name), p.local_name(staging.name)
    out = [f"DROP VIEW IF EXISTS {view.name}{p.on_cluster} SYNC"]
    if p.cluster:
        out.append(f"DROP TABLE IF EXISTS {staging.name}{p.on_cluster} SYNC")
    out.append(f"DROP TABLE IF EXISTS {staged}{p.on_cluster} SYNC")
    out.extend(staging.create(p, replica_path=f"{table.name}_v{version}"))
    out.append(f"INSERT INTO {staging.name} ({columns}) {view.select}")
    out.append(f"EXCHANGE TABLES {local} AND {staged}{p.on_cluster}")
    if p.cluster:  # the Distributed tables follow the new local structure
        out.append(f"DROP TABLE IF EXISTS {staging.name}{p.on_cluster} SYNC")
        out.append(f"DROP TABLE IF EXISTS {table.name}{p.on_cluster} SYNC")
        out.extend(table.create(p)[1:])
    out.append(f"DROP TABLE IF EXISTS {staged}{p.on_cluster} SYNC")
    out.extend(view.create(p))
    return out


def _v3(p: EngineProfile) -> list[str]:
    """Player aggregates with plain columns (see ``PLAYER_SESSIONS_V3``)."""
    columns = "project_id, session, start, end, user, origin, os, device, video_type, "
    return rebuild(PLAYER_SESSIONS_V3, PLAYER_VIEW_V3, columns + "durations, counts", 3, p)


# ------------------------------------------------------------------------------ version 4

#: Desktop and endpoint aggregates in plain columns too, for the same reason as the player's
#: (see ``PLAYER_SESSIONS_V3``): event counts as sums of rows; the endpoint's first page values
#: as the least ``(time, id, values...)`` tuple, which is the row ``argMin`` by ``(time, id)``
#: picked (ids are unique); its first non-empty organisation likewise, rows without one
#: standing aside as ``(far future, '', '')``; its distinct pages as a set of page ids.
_SMALL_GRANULES = "index_granularity = 256, min_compress_block_size = 4096, "
_SMALL_GRANULES += "max_compress_block_size = 16384"
DESKTOP_SESSIONS_V4 = Table(
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
)
DESKTOP_VIEW_V4 = View(
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
)
_FIRST = f"Tuple({_T}, String, String, String, String, UInt16, String)"
_FIRST_ORG = f"Tuple({_T}, String, String)"
ENDPOINT_SESSIONS_V4 = Table(
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
)
ENDPOINT_VIEW_V4 = View(
    "endpoint_sessions_mv",
    "endpoint_sessions",
    "SELECT project_id, session, min(time) AS start, max(time) AS end, min(tuple(time, id, "
    + ", ".join(expr for _, _, expr in ENDPOINT_FIRST_COLUMNS)
    + f")) AS first, min(if({_ORG} != '', tuple(time, id, {_ORG}), tuple({_FAR}, '', ''))) "
    """AS first_org, max(ingested_at) AS committed,
        groupUniqArray(JSONExtractString(data, 'page_id')) AS pages,
        toUInt64(count()) AS events
        FROM events WHERE kind = 'endpoint' GROUP BY project_id, session""",
)


def _v4(p: EngineProfile) -> list[str]:
    """Desktop and endpoint aggregates in plain columns (see ``DESKTOP_SESSIONS_V4``)."""
    desktop = "project_id, session, start, end, login, logout, user_id, user_name, "
    desktop += "client_guid, client_name, events"
    endpoint = "project_id, session, start, end, first, first_org, committed, pages, events"
    return rebuild(DESKTOP_SESSIONS_V4, DESKTOP_VIEW_V4, desktop, 4, p) + rebuild(
        ENDPOINT_SESSIONS_V4, ENDPOINT_VIEW_V4, endpoint, 4, p
    )


# ------------------------------------------------------------------------------ version 5

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


# ------------------------------------------------------------------------------ version 6

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


MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema: projects, keys, users, events, session aggregates", _initial),
    Migration(2, "endpoint sessions keep their first page's values; session time index", _v2),
    Migration(3, "player sessions in plain columns, for pages of scattered sessions", _v3),
    Migration(4, "desktop and endpoint sessions in plain columns", _v4),
    Migration(5, "player sessions with a sum column per action type", _v5),
    Migration(6, "session index start rows only where an insert may start its session", _v6),
    Migration(7, "inserted blocks deduplicated by token in the events table and every view", _v7),
]

MIGRATIONS_TABLE = Table(
    "schema_migrations",
    "ReplacingMergeTree",
    f"version UInt32, name String, applied_at {_T}",
    "ORDER BY version",
    sharding_key="version",
)
