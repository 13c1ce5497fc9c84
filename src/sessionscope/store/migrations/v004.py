"""Schema version 4: desktop and endpoint sessions in plain columns.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View, rebuild

__all__ = ["MIGRATION"]


_T = "DateTime64(3, 'UTC')"
_ZERO = "toDateTime64(0, 3, 'UTC')"
_FAR = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"

_FIRST_KEY = f"Tuple({_T}, String)"
ENDPOINT_FIRST_COLUMNS: list[tuple[str, str, str]] = [
    ("first_agent_id", "String", "user"),
    ("first_visited_site", "String", "site"),
    ("first_protocol", "String", "JSONExtractString(data, 'protocol')"),
    ("first_port", "UInt16", "toUInt16(JSONExtractUInt(data, 'port'))"),
    ("first_source_addr", "String", "JSONExtractString(data, 'source_addr')"),
]
_ORG = "JSONExtractString(data, 'org_name')"

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


MIGRATION = Migration(4, "desktop and endpoint sessions in plain columns", _v4)
