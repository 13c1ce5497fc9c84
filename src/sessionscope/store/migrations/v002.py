"""Schema version 2: endpoint sessions keep their first page's values; the session time index.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View

__all__ = ["MIGRATION"]


_T = "DateTime64(3, 'UTC')"

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


MIGRATION = Migration(
    2, "endpoint sessions keep their first page's values; session time index", _v2
)
