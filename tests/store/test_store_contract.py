"""The store contract: what every ClickHouse deployment must do, run on the embedded engine.

The suite takes a ``contract_store`` fixture. It runs on the embedded chDB engine; set
``SESSIONSCOPE_TEST_CLICKHOUSE_URL`` to also run it against a ClickHouse server (none can run
on CI machines, so only the embedded engine runs there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.factories import BASE, channel, desktop, endpoint, minutes, player

from sessionscope.config import Settings
from sessionscope.domain.events import Event, validate_batch
from sessionscope.security import SecretBox
from sessionscope.store.clickhouse import ClickHouseStore, open_store
from sessionscope.store.engine import StoreError
from sessionscope.store.migrations import MIGRATIONS
from sessionscope.store.schema import EngineProfile

ENGINES = ["embedded"] + (["server"] if os.environ.get("SESSIONSCOPE_TEST_CLICKHOUSE_URL") else [])


@pytest.fixture(params=ENGINES)
def contract_store(
    request: pytest.FixtureRequest, store: ClickHouseStore, settings: Settings
) -> Iterator[ClickHouseStore]:
    if request.param == "embedded":
        yield store
        return
    remote = open_store(
        Settings(
            clickhouse_url=os.environ["SESSIONSCOPE_TEST_CLICKHOUSE_URL"],
            secret_key=settings.secret_key,
        )
    )
    yield remote
    remote.close()


def events(*raw: dict[str, object]) -> list[Event]:
    out, problems = validate_batch(list(raw), now=datetime.now(UTC))
    assert not problems
    return out


def project_id(s: ClickHouseStore, name: str) -> int:
    return s.create_project(f"{name}-{datetime.now(UTC).timestamp()}").id


class TestMigrations:
    def test_all_applied_and_idempotent(self, contract_store: ClickHouseStore) -> None:
        assert contract_store.applied_migrations() == [m.version for m in MIGRATIONS]
        assert contract_store.migrate() == []
        assert contract_store.applied_migrations() == [m.version for m in MIGRATIONS]

    def test_inserts_are_synchronous(self, contract_store: ClickHouseStore) -> None:
        assert contract_store.insert_settings["async_insert"] == 0
        assert contract_store.insert_settings["wait_for_async_insert"] == 1


class TestProjectsAndCredentials:
    def test_projects(self, contract_store: ClickHouseStore) -> None:
        name = f"proj-{datetime.now(UTC).timestamp()}"
        p = contract_store.create_project(name)
        assert p.id > 0
        assert contract_store.get_project(p.id) == contract_store.get_project_by_name(name)
        with pytest.raises(StoreError):
            contract_store.create_project(name)
        with pytest.raises(StoreError):
            contract_store.create_project("  ")
        q = contract_store.create_project(name + "-2")
        assert q.id > p.id
        updated = contract_store.update_project(p, idle_timeout_s=60)
        assert contract_store.get_project(p.id) == updated
        assert updated.idle_timeout_s == 60
        assert updated.apdex_threshold_ms == 2000
        assert {p.id, q.id} <= {x.id for x in contract_store.list_projects()}

    def test_api_keys_are_verified_and_stored_hashed(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "keys")
        key = contract_store.create_api_key(pid, "ci")
        project = contract_store.verify_api_key(key)
        assert project is not None and project.id == pid
        assert contract_store.verify_api_key(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
        assert contract_store.verify_api_key("garbage") is None
        secret = key.split("_", 2)[2]
        stored = contract_store.query(
            "SELECT secret_hash, secret_enc FROM api_keys WHERE project_id = {p:UInt32}",
            {"p": pid},
        )
        assert all(secret not in h and secret not in e for h, e in stored)
        assert [k.name for k in contract_store.list_keys(pid)] == ["ci"]

    def test_signing_secrets_are_encrypted(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "ncp")
        access, secret = contract_store.create_signing_key(pid)
        assert contract_store.signing_secret(access) == (pid, secret)
        assert contract_store.signing_secret("UNKNOWN") is None
        (sealed,) = contract_store.query(
            "SELECT secret_enc FROM api_keys FINAL WHERE key_id = {k:String}", {"k": access}
        )[0]
        assert secret not in sealed
        assert SecretBox("another key").open(sealed) is None
        # A signing key is not a bearer API key.
        assert contract_store.verify_api_key(access) is None

    def test_users(self, contract_store: ClickHouseStore) -> None:
        a, b = project_id(contract_store, "ua"), project_id(contract_store, "ub")
        email = f"Ops-{a}@Example.com"
        token = contract_store.create_user(email, [a, b], organization="acme")
        user = contract_store.verify_user(email.lower(), token)
        assert user is not None
        assert (user.project_ids, user.organization) == ((a, b), "acme")
        assert contract_store.user_by_token(token) == user
        assert contract_store.verify_user(email, token + "x") is None
        with pytest.raises(StoreError):
            contract_store.create_user("not-an-email", [a])
        with pytest.raises(StoreError):
            contract_store.create_user("x@example.com", [])


class TestEvents:
    def test_dedup_by_id_within_and_across_batches(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "dedup")
        batch = events(player(session="a"), player("startup", session="a"))
        assert contract_store.insert_events(pid, batch) == (2, 0)
        assert contract_store.insert_events(pid, batch) == (0, 2)
        assert contract_store.insert_events(pid, batch + batch) == (0, 4)
        fresh = events(player("paused", session="a", id="x"), player("seeking", id="x"))
        assert contract_store.insert_events(pid, fresh) == (1, 1)
        assert contract_store.count_events(pid) == 3
        # Ids are per project.
        other = project_id(contract_store, "dedup-other")
        assert contract_store.insert_events(other, batch) == (2, 0)

    def test_concurrent_inserts_of_one_batch(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "race")
        batch = events(*(player(session=f"r{i}", at=BASE + minutes(i)) for i in range(300)))
        results: list[tuple[int, int]] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(contract_store.insert_events(pid, batch))
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(a for a, _ in results) == 300
        assert contract_store.count_events(pid) == 300
        (rows,) = contract_store.query(
            "SELECT count() FROM events WHERE project_id = {p:UInt32}", {"p": pid}
        )[0]
        assert rows == 300

    def test_acknowledged_events_are_visible_to_a_new_connection(
        self, contract_store: ClickHouseStore
    ) -> None:
        pid = project_id(contract_store, "durable")
        contract_store.insert_events(pid, events(desktop("login", session=3)))
        seen: list[int] = []

        def read() -> None:  # another thread opens its own client
            seen.append(contract_store.count_events(pid))

        t = threading.Thread(target=read)
        t.start()
        t.join()
        assert seen == [1]

    def test_round_trip_and_order(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "order")
        sent = events(
            player("player_start", session="o", duration_ms=5, ip="10.0.0.1", browser="Chrome"),
            player("startup", session="o", duration_ms=352),
            player("playing", at=BASE + minutes(1), session="o", duration_ms=30057, video_time=30),
            player("ended", at=BASE + minutes(1), session="o"),
        )
        contract_store.insert_events(pid, sent)
        got = contract_store.session_events(pid, "player", ["o", "missing"])
        assert got["missing"] == []
        assert got["o"] == sent
        assert got["o"][0].attrs["browser"] == "Chrome"
        assert got["o"][3].duration_ms is None

    def test_event_queries(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "evq")
        contract_store.insert_events(
            pid,
            events(
                channel("PUBLISH_START", at=BASE),
                channel("PUBLISH_OVER_THRESHOLD", at=BASE + minutes(1), level="ERROR"),
                channel("PUBLISH_END", at=BASE + minutes(2)),
                channel("PUBLISH_START", at=BASE, channel="ls-2"),
            ),
        )
        newest = contract_store.events(pid, "channel", sessions=["ls-1"], newest_first=True)
        assert [e.type for e in newest] == [
            "PUBLISH_END",
            "PUBLISH_OVER_THRESHOLD",
            "PUBLISH_START",
        ]
        inclusive = contract_store.events(pid, "channel", start=BASE, end=BASE + minutes(1))
        assert len(inclusive) == 3
        assert [e.type for e in contract_store.events(pid, "channel", level="ERROR")] == [
            "PUBLISH_OVER_THRESHOLD"
        ]
        page = contract_store.events(pid, "channel", newest_first=True, limit=2, offset=1)
        assert len(page) == 2
        assert contract_store.count_matching_events(pid, "channel", types=["PUBLISH_START"]) == 2
        live = {c["channel"]: c["live"] for c in contract_store.channels(pid)}
        assert live == {"ls-1": False, "ls-2": True}


class TestSessionAggregates:
    def test_player_aggregate(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "agg")
        # Two inserts of one session land in two parts: the read re-aggregates them.
        contract_store.insert_events(pid, events(player("startup", session="p", duration_ms=100)))
        contract_store.insert_events(
            pid,
            events(
                player("startup", at=BASE + minutes(5), session="p", duration_ms=200),
                player("error", at=BASE + minutes(6), session="p"),
            ),
        )
        (row,) = contract_store.session_rows("player", pid)
        assert row["start"] == BASE and row["end"] == BASE + minutes(6)
        # The sums the player metrics are made of (domain.sessions), and every event counted.
        assert row["durations"] == {
            "player_start": 0,
            "startup": 300,
            "rebuffering": 0,
            "playing": 0,
        }
        assert row["counts"] == {"error": 1}
        assert row["events"] == 3

    def test_keyset_cursor_filters_and_counts(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "keyset")
        contract_store.insert_events(
            pid,
            events(
                *(
                    endpoint(at=BASE + minutes(i), session=f"e{i}", port=80 if i % 2 else 443)
                    for i in range(10)
                )
            ),
        )
        first = contract_store.session_rows("endpoint", pid, limit=4)
        assert [r["session"] for r in first] == ["e9", "e8", "e7", "e6"]
        rest = contract_store.session_rows(
            "endpoint", pid, before=(first[-1]["start"], first[-1]["session"]), limit=100
        )
        assert [r["session"] for r in rest] == ["e5", "e4", "e3", "e2", "e1", "e0"]
        odd = contract_store.session_rows("endpoint", pid, filters={"port": ["80"]})
        assert len(odd) == 5
        asc = contract_store.session_rows("endpoint", pid, oldest_first=True, limit=2)
        assert [r["session"] for r in asc] == ["e0", "e1"]
        window = {"start": BASE + minutes(2), "end": BASE + minutes(4)}
        assert contract_store.count_sessions("endpoint", pid, **window) == 3
        rows = list(contract_store.iter_session_rows("endpoint", pid, batch=3))
        assert len(rows) == 10

    def test_desktop_aggregate(self, contract_store: ClickHouseStore) -> None:
        pid = project_id(contract_store, "desk")
        contract_store.insert_events(
            pid,
            events(
                desktop("login", session=9),
                desktop("activity", at=BASE + minutes(3), session=9),
                desktop("logout", at=BASE + minutes(9), session=9),
                desktop("activity", at=BASE + minutes(1), session=10),
            ),
        )
        rows = {r["session"]: r for r in contract_store.session_rows("desktop", pid)}
        assert rows["9"]["login"] == BASE and rows["9"]["logout"] == BASE + minutes(9)
        assert rows["10"]["login"] is None and rows["10"]["logout"] is None
        assert rows["9"]["user_name"] == "alice"

    def test_tenants_are_isolated(self, contract_store: ClickHouseStore) -> None:
        a, b = project_id(contract_store, "iso-a"), project_id(contract_store, "iso-b")
        contract_store.insert_events(a, events(player(session="same"), endpoint(session="same")))
        for kind in ("player", "endpoint", "desktop"):
            assert contract_store.session_rows(kind, b) == []
        assert contract_store.session_events(b, "player", ["same"]) == {"same": []}
        assert contract_store.events(b, "player") == []


class TestClusterProfile:
    """The cluster engine profile, checked as rendered SQL: no ClickHouse cluster can run here,
    so this is the one boundary the suite does not exercise for real."""

    def test_renders_replicated_local_tables_behind_distributed(self) -> None:
        p = EngineProfile(cluster="analytics")
        sql = "\n".join(MIGRATIONS[0].statements(p))
        assert "CREATE TABLE IF NOT EXISTS events_local ON CLUSTER analytics" in sql
        assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events'" in sql
        assert "ReplicatedAggregatingMergeTree(" in sql
        assert "ENGINE = Distributed(analytics, currentDatabase(), events_local" in sql
        assert "TO player_sessions_local AS" in sql and "FROM events_local" in sql
        assert "fsync_after_insert" not in sql

    def test_single_node_uses_plain_engines(self) -> None:
        sql = "\n".join(MIGRATIONS[0].statements(EngineProfile()))
        assert "Replicated" not in sql and "Distributed" not in sql
        assert "fsync_after_insert = 1" in sql


def test_times_are_utc_whatever_the_host_zone(contract_store: ClickHouseStore) -> None:
    pid = project_id(contract_store, "tz")
    at = datetime(2025, 3, 30, 1, 30, tzinfo=UTC) + timedelta(milliseconds=123)
    contract_store.insert_events(pid, events(player(at=at, session="tz")))
    (row,) = contract_store.session_rows("player", pid)
    assert row["start"] == at and row["start"].tzinfo is UTC
