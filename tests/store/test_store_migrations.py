"""Migrations: a store made by an earlier version is brought up to date with its data intact.

The store of version 1 is built in a database of its own on the shared embedded engine (chDB
runs one engine per process), filled, then migrated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from tests.factories import BASE, desktop, endpoint, player

from sessionscope.config import Settings
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import PLAYER_TYPES, validate_batch
from sessionscope.security import hash_secret, new_api_key
from sessionscope.store import clickhouse as ch
from sessionscope.store import engine as store_engine
from sessionscope.store.migrations import MIGRATIONS, QUIET_S, MigrationRefused, offline
from sessionscope.store.migrations.v005 import PLAYER_TYPES_V5
from sessionscope.store.schema import EngineProfile


@contextlib.contextmanager
def _store_at(
    version: int, store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ch.ClickHouseStore]:
    """A store in a database of its own, migrated up to ``version`` only."""
    database = f"upgrade_{version}_{int(datetime.now(UTC).timestamp() * 1000)}"
    store.command(f"CREATE DATABASE {database}")
    path = str(Path(settings.data_dir) / "clickhouse")

    def connect() -> Any:
        return clickhouse_connect.get_client(interface="chdb", path=path, database=database)

    monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS[:version])
    # Not exclusive: an exclusive store's writer also fills columns of the latest schema
    # (``events.starts``), which an old store lacks until it is migrated.
    old = ch.ClickHouseStore(connect, store.profile, store._box, exclusive=False)
    old.migrate()
    try:
        yield old
    finally:
        old.close()
        store.command(f"DROP DATABASE {database} SYNC")


def _old_project(store: ch.ClickHouseStore, name: str) -> Project:
    """A project in a store of an older version, with the columns every version has (the
    current code reads columns a later version adds)."""
    project_id = int(store.query("SELECT max(id) FROM projects")[0][0] or 0) + 1
    created = datetime.now(UTC).replace(microsecond=0)
    store.client.insert(
        "projects",
        [[project_id, name, created, 1]],
        column_names=["id", "name", "created_at", "version"],
        settings=store.insert_settings,
    )
    return Project(project_id, name, created)


@pytest.fixture
def old_store(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    with _store_at(1, store, settings, monkeypatch) as old:
        yield old


@pytest.fixture
def v2_store(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    with _store_at(2, store, settings, monkeypatch) as old:
        yield old


def test_version_2_keeps_first_pages_and_indexes_stored_sessions(
    old_store: ch.ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert old_store.applied_migrations() == [1]
    project = _old_project(old_store, "old")
    raw = [
        endpoint(session="mixed", at=BASE, page_id="p1", protocol="http", port=80),
        endpoint(
            session="mixed",
            at=BASE + timedelta(seconds=5),
            page_id="p2",
            protocol="https",
            port=443,
            visited_site="b.example.com",
            org_name="Later Org",
        ),
        player(at=BASE, session="ps-old"),
        player(at=BASE + timedelta(minutes=3), session="ps-old", type="ended"),
        desktop("login", at=BASE, session=7),
    ]
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    old_store.insert_events(project.id, events)

    monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
    assert old_store.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS[1:]]
    assert old_store.applied_migrations() == [m.version for m in MIGRATIONS]

    (mixed,) = old_store.session_rows("endpoint", project.id, sessions=["mixed"])
    assert (mixed["protocol"], mixed["port"], mixed["visited_site"]) == (
        "http",
        80,
        "example.com",
    )
    assert mixed["org_name"] == "Later Org"  # the first non-empty one
    assert mixed["pages"] == 2
    assert old_store.session_rows("endpoint", project.id, filters={"protocol": ["https"]}) == []
    index = old_store.query(
        "SELECT kind, session, edge, toUnixTimestamp64Milli(t) FROM session_index "
        "WHERE project_id = {p:UInt32} ORDER BY kind, session, edge",
        {"p": project.id},
    )
    base = int(BASE.timestamp() * 1000)
    assert index == [
        ("desktop", "7", 1, base),
        ("desktop", "7", 2, base),
        ("endpoint", "mixed", 1, base),
        ("endpoint", "mixed", 2, base + 5000),
        ("player", "ps-old", 1, base),
        ("player", "ps-old", 2, base + 180_000),
    ]
    # New events keep both up to date.
    more, _ = validate_batch(
        [player(at=BASE - timedelta(minutes=1), session="ps-old", id="early")],
        now=datetime.now(UTC),
    )
    old_store.insert_events(project.id, more)
    saved = old_store.bounded_page_min_rows
    old_store.bounded_page_min_rows = 0
    try:
        (row,) = old_store.session_rows("player", project.id, limit=5)
    finally:
        old_store.bounded_page_min_rows = saved
    assert row["start"] == BASE - timedelta(minutes=1)


def test_version_3_keeps_player_sessions_and_can_run_again(
    v2_store: ch.ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert v2_store.applied_migrations() == [1, 2]
    project = _old_project(v2_store, "players")
    raw = [
        player(at=BASE, session="a", type="player_start", duration_ms=700),
        player(at=BASE + timedelta(seconds=1), session="a", type="startup", duration_ms=300),
        player(at=BASE + timedelta(seconds=61), session="a", type="playing", duration_ms=60_000),
        player(at=BASE + timedelta(minutes=2), session="b", type="player_start", duration_ms=0),
        player(at=BASE + timedelta(minutes=3), session="b", type="error"),
    ]
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    v2_store.insert_events(project.id, events)
    assert v2_store.insert_events(project.id, events) == (0, len(events))  # a resend
    stored = "SELECT session, {n}, {sums}(durations), {sums}(counts) FROM player_sessions "
    stored += "GROUP BY session ORDER BY session"
    before = v2_store.query(stored.format(n="uniqExactMerge(events)", sums="sumMapMerge"))
    assert [r[1] for r in before] == [3, 2]

    monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS[:3])  # this version only
    assert v2_store.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS[2:3]]
    after = stored.format(n="arraySum((sumMap(counts)).2)", sums="sumMap")
    assert v2_store.query(after) == before
    ddl = v2_store.query("SHOW CREATE TABLE player_sessions")[0][0]
    assert "SimpleAggregateFunction(sumMap" in ddl and "index_granularity = 256" in ddl

    # Interrupted and applied again (as at the next start): the same sessions.
    for sql in MIGRATIONS[2].statements(v2_store.profile):
        v2_store.command(sql)
    assert v2_store.query(after) == before
    tables = {r[0] for r in v2_store.query("SHOW TABLES")}
    assert "player_sessions_v3" not in tables

    # The view feeds the new table.
    more, _ = validate_batch(
        [player(at=BASE + timedelta(minutes=4), session="b", type="playing", duration_ms=5000)],
        now=datetime.now(UTC),
    )
    v2_store.insert_events(project.id, more)
    b = v2_store.query(after)[1]
    assert b[0] == "b" and b[1] == 3
    assert dict(zip(*b[2], strict=True))["playing"] == 5000
    assert dict(zip(*b[3], strict=True)) == {"player_start": 1, "error": 1, "playing": 1}


def test_version_5_keeps_player_sums_per_type_and_can_run_again(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store_at(4, store, settings, monkeypatch) as v4:
        project = _old_project(v4, "players")
        raw = [
            player(at=BASE, session="a", type="player_start", duration_ms=700),
            player(at=BASE + timedelta(seconds=1), session="a", type="startup", duration_ms=300),
            player(at=BASE + timedelta(seconds=61), session="a", type="playing", duration_ms=6000),
            player(at=BASE + timedelta(seconds=70), session="a", type="rebuffering", duration_ms=9),
            player(at=BASE + timedelta(minutes=2), session="b", type="player_start"),
            player(at=BASE + timedelta(minutes=3), session="b", type="error"),
            player(at=BASE + timedelta(minutes=4), session="b", type="error"),
        ]
        events, problems = validate_batch(raw, now=datetime.now(UTC))
        assert not problems
        v4.insert_events(project.id, events[:3])
        v4.insert_events(project.id, events[3:])  # two parts: the read re-aggregates
        old = v4.query(
            "SELECT session, min(start), max(end), max(device), sumMap(durations), "
            "sumMap(counts) FROM player_sessions GROUP BY session ORDER BY session"
        )

        monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
        assert v4.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS[4:]]
        per_type = ", ".join(f"sum(d_{t}), sum(n_{t})" for t in PLAYER_TYPES_V5)
        new_sql = (
            f"SELECT session, min(start), max(end), max(device), sum(events), {per_type} "
            "FROM player_sessions GROUP BY session ORDER BY session"
        )
        new = v4.query(new_sql)
        for o, n in zip(old, new, strict=True):
            assert o[:4] == n[:4]
            durations, counts = dict(zip(*o[4], strict=True)), dict(zip(*o[5], strict=True))
            assert n[4] == sum(counts.values())
            for i, t in enumerate(PLAYER_TYPES_V5):
                assert (n[5 + 2 * i], n[6 + 2 * i]) == (durations.get(t, 0), counts.get(t, 0))
        rows = v4.session_rows("player", project.id, limit=None)
        assert [(r["session"], r["events"], r["counts"]) for r in rows] == [
            ("b", 3, {"error": 2}),
            ("a", 4, {"error": 0}),
        ]
        assert rows[1]["durations"] == {
            "player_start": 700,
            "startup": 300,
            "rebuffering": 9,
            "playing": 6000,
        }

        # Interrupted and applied again (as at the next start): the same sessions.
        for sql in MIGRATIONS[4].statements(v4.profile):
            v4.command(sql)
        assert v4.query(new_sql) == new
        assert "player_sessions_v5" not in {r[0] for r in v4.query("SHOW TABLES")}

        # The view feeds the new table.
        more, _ = validate_batch(
            [player(at=BASE + timedelta(minutes=5), session="b", type="playing", duration_ms=50)],
            now=datetime.now(UTC),
        )
        v4.insert_events(project.id, more)
        (b,) = v4.session_rows("player", project.id, sessions=["b"])
        assert b["events"] == 4 and b["durations"]["playing"] == 50


def test_every_player_action_type_has_its_sum_columns() -> None:
    # The domain may accept a new action type only with a migration adding its columns.
    assert set(PLAYER_TYPES) == set(PLAYER_TYPES_V5)


def test_version_3_on_a_cluster_swaps_local_tables_and_follows_with_distributed() -> None:
    # Rendered SQL only: no ClickHouse cluster can run here.
    from sessionscope.store.schema import EngineProfile

    sql = MIGRATIONS[2].statements(EngineProfile(cluster="analytics"))
    text = "\n".join(sql)
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/player_sessions_v3'"
        in text
    )
    exchange = sql.index(
        "EXCHANGE TABLES player_sessions_local AND player_sessions_v3_local ON CLUSTER analytics"
    )
    fill = next(i for i, s in enumerate(sql) if s.startswith("INSERT INTO player_sessions_v3 "))
    redo = next(i for i, s in enumerate(sql) if "Distributed(analytics" in s and i > exchange)
    assert fill < exchange < redo
    assert "AS player_sessions_local ENGINE = Distributed" in sql[redo]
    assert sql[-1].startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS player_sessions_mv")
    assert "TO player_sessions_local AS" in sql[-1] and "FROM events_local" in sql[-1]


def test_version_4_keeps_desktop_and_endpoint_sessions(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store_at(3, store, settings, monkeypatch) as v3:
        project = _old_project(v3, "fleet")
        raw = [
            desktop("login", at=BASE, session=7),
            desktop("activity", at=BASE + timedelta(minutes=1), session=7),
            desktop("logout", at=BASE + timedelta(minutes=9), session=7),
            endpoint(session="e", at=BASE + timedelta(seconds=5), page_id="p2", port=443),
            endpoint(session="e", at=BASE, page_id="p1", protocol="http", port=80),
            endpoint(session="e", at=BASE + timedelta(seconds=9), page_id="p1", org_name="Org"),
        ]
        events, problems = validate_batch(raw, now=datetime.now(UTC))
        assert not problems
        v3.insert_events(project.id, events)
        v3.insert_events(project.id, events)  # a resend changes nothing
        old_desktop = v3.query(
            "SELECT session, min(start), max(end), min(login), max(logout), max(user_id), "
            "uniqExactMerge(events) FROM desktop_sessions GROUP BY session"
        )
        old_endpoint = v3.query(
            "SELECT session, min(start), max(end), argMinMerge(first_agent_id), "
            "argMinMerge(first_visited_site), argMinMerge(first_protocol), "
            "argMinMerge(first_port), argMinMerge(first_source_addr), "
            "argMinIfMerge(first_org_name), uniqExactMerge(pages), uniqExactMerge(events) "
            "FROM endpoint_sessions GROUP BY session"
        )
        assert old_endpoint[0][5:7] == ("http", 80) and old_endpoint[0][9:] == (2, 3)

        monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
        assert v3.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS[3:]]
        new_desktop = v3.query(
            "SELECT session, min(start), max(end), min(login), max(logout), max(user_id), "
            "sum(events) FROM desktop_sessions GROUP BY session"
        )
        new_endpoint = v3.query(
            "SELECT session, min(start), max(end), "
            + ", ".join(f"tupleElement(min(first), {i})" for i in range(3, 8))
            + ", tupleElement(min(first_org), 3), length(groupUniqArrayArray(pages)), "
            "sum(events) FROM endpoint_sessions GROUP BY session"
        )
        assert new_desktop == old_desktop and new_endpoint == old_endpoint
        (e,) = v3.session_rows("endpoint", project.id, filters={"protocol": ["http"]})
        assert (e["org_name"], e["pages"], e["events"]) == ("Org", 2, 3)
        (d,) = v3.session_rows("desktop", project.id, sessions=["7"])
        assert d["events"] == 3 and d["logout"] == BASE + timedelta(minutes=9)


def test_version_8_keeps_keys_full_users_live_and_links_valid(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store_at(7, store, settings, monkeypatch) as v7:
        project = _old_project(v7, "keys")
        key_id, secret, full = new_api_key()
        token = "user-token"
        now = datetime.now(UTC)
        v7.client.insert(
            "api_keys",
            [[key_id, project.id, "api", hash_secret(secret), "", "old", now, 0, 1]],
            column_names=[
                "key_id",
                "project_id",
                "kind",
                "secret_hash",
                "secret_enc",
                "name",
                "created_at",
                "revoked",
                "version",
            ],
            settings=v7.insert_settings,
        )
        v7.client.insert(
            "users",
            [["old@example.com", hash_secret(token), [project.id], "", now, 1]],
            column_names=[
                "email",
                "token_hash",
                "project_ids",
                "organization",
                "created_at",
                "version",
            ],
            settings=v7.insert_settings,
        )
        monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
        assert v7.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS[7:]]
        grant = v7.key_grant(full)
        assert grant is not None and (grant.scope, grant.key_id) == ("full", key_id)
        assert v7.verify_user("old@example.com", token) is not None
        upgraded = v7.get_project(project.id)
        assert upgraded is not None and upgraded.signin_generation == 0


def test_only_the_versions_that_drop_a_view_need_the_servers_stopped() -> None:
    p = EngineProfile()
    assert [m.version for m in MIGRATIONS if offline(m, p)] == [2, 3, 4, 5, 6]
    cluster = EngineProfile(cluster="analytics")
    assert [m.version for m in MIGRATIONS if offline(m, cluster)] == [2, 3, 4, 5, 6]


def test_a_shared_store_rebuilds_only_with_the_servers_stopped_and_quiet(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a store other servers may write (not exclusive, as a ClickHouse server), a server
    starting leaves a rebuild to `sessionscope migrate`, which applies it only once no event
    has been stored for a while; the other versions apply as they always did."""
    with _store_at(2, store, settings, monkeypatch) as v2:
        assert not v2.exclusive
        project = _old_project(v2, "shared")
        events, _ = validate_batch([player(at=BASE, session="s")], now=datetime.now(UTC))
        v2.insert_events(project.id, events)
        sessions = "SELECT session, sum(events) FROM player_sessions GROUP BY session"

        monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
        # As a server starts (open_store on a ClickHouse server): refused, nothing applied.
        with pytest.raises(MigrationRefused) as refused:
            v2.migrate(servers_stopped=False)
        message = str(refused.value)
        assert "schema version 3 (" in message and "sessionscope migrate" in message
        assert "stop every sessionscope server" in message
        assert v2.applied_migrations() == [1, 2]
        assert "player_sessions_mv" in {r[0] for r in v2.query("SHOW TABLES")}

        # `sessionscope migrate` right after an event was stored: a server still writes.
        with pytest.raises(MigrationRefused, match=r"an event was stored \d+ s ago"):
            v2.migrate(servers_stopped=True, quiet_s=QUIET_S)
        assert v2.applied_migrations() == [1, 2]

        # Quiet for long enough: applied, the sessions kept.
        time.sleep(1.1)
        assert v2.migrate(servers_stopped=True, quiet_s=1.0) == [
            f"{m.version:04d} {m.name}" for m in MIGRATIONS[2:]
        ]
        assert v2.query(sessions) == [("s", 1)]

    # Versions that change no view apply at a server's start on a shared store, as before.
    with _store_at(7, store, settings, monkeypatch) as v7:
        monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
        assert v7.migrate(servers_stopped=False) == [
            f"{m.version:04d} {m.name}" for m in MIGRATIONS[7:]
        ]


def test_an_exclusive_store_rebuilds_at_start(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded engine is one process's: nobody else can insert during a rebuild."""
    with _store_at(2, store, settings, monkeypatch) as v2:
        exclusive = ch.ClickHouseStore(v2._connect, v2.profile, v2._box, exclusive=True)
        try:
            monkeypatch.setattr(store_engine, "MIGRATIONS", MIGRATIONS)
            assert exclusive.migrate(servers_stopped=False, quiet_s=QUIET_S) == [
                f"{m.version:04d} {m.name}" for m in MIGRATIONS[2:]
            ]
        finally:
            exclusive.close()
