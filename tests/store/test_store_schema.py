"""The schema: every migration's SQL is frozen, a fresh store equals an upgraded one, and the
runner migrates one server at a time.

Fresh and upgraded stores are built in databases of their own on the shared embedded engine
(chDB runs one engine per process).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from sessionscope.config import Settings
from sessionscope.store import migrations
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.migrations import LOCK_TABLE, MIGRATIONS, MigrationLocked
from sessionscope.store.schema import EngineProfile, current

#: sha256 of each version's statements, rendered for one node (fsync on, fsync off) and for a
#: cluster. A released migration is never edited: a change here means history was rewritten
#: (write the next version instead).
FROZEN: dict[int, tuple[str, str, str]] = {
    1: (
        "ae78a2763e6214a66c124d7d58a5af291d678a4aa01a724c47b3f720084dfe73",
        "d8382484b1ca6751f18e5c7ba3683290d25baa51822b292613d28ba29f5e9281",
        "401f4b8378f352d45f513a97a29f46af367cbfc6999fc65a5a8515b6306a6d81",
    ),
    2: (
        "954acda14bc3af6cfed506c9b16369d119ba59f8bc2db0e6b87e32cfa94ee3c3",
        "975939a825971cd83a082a3520d93148d36ce42ee9c629e4595b99e27a7de039",
        "23250e585ab1a9e5828cb70f6cfe8220a431dd1125b28b295ec132a4c1d969c8",
    ),
    3: (
        "c1cbb632a22abd23437c3695b764942faa9dd5e619446853bebc1f8cdefc2842",
        "85928ebe01d7b912494547a652090baf26f55a09c68307bb2ef4072bbce1099a",
        "149ecf8ef0a8a6ba36f7a9985d76c62848488e787e0bee5e38222e9516e6ece6",
    ),
    4: (
        "143fecb92d94bab73ed313bdad4749689220b484f688bf351faa339d409f8c86",
        "b0fc40d8f263166df65e88ce5d7e89de930036b92f597d91ce822e6b05d0abeb",
        "0f3ae9512c9c79083fc9baedf5728f9a5f4e5b32f3e10d7571e5d6705862a9ed",
    ),
    5: (
        "9915a73d8db7b76b5a29edaf9df9362d3be3a532c2584f67691d36914fa08592",
        "1f0c62f6c239e7f0c39c87560991aeb7bcc41851968d9ec689c952f6ba6f9bd9",
        "ee592aea8c903a6db6f3042755df9d0d2add3e9ddceb3c83cb5cbd1cfbe71f5b",
    ),
    6: (
        "cce3762df12049ec617dce2bb94aa1328fd5cae8018088d04a49ba282e061760",
        "cce3762df12049ec617dce2bb94aa1328fd5cae8018088d04a49ba282e061760",
        "9956ce82c742e7da3995819430d3a861a5d93c00f6a76a211a7ef25f70681743",
    ),
    7: (
        "543c56200e5f3fb6dee265ba8538a1285bf86ee01219a6e2d7c39c4d11dba654",
        "543c56200e5f3fb6dee265ba8538a1285bf86ee01219a6e2d7c39c4d11dba654",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    8: (
        "5c5ab98e06d07755bba87239285ef516ebe613efb059bae22b887d9b86b1dd23",
        "5c5ab98e06d07755bba87239285ef516ebe613efb059bae22b887d9b86b1dd23",
        "468a79a1871d599f4b5e3241ec2a842f0de1c33945d4757b5ec70ed79964bf26",
    ),
}
PROFILES = (EngineProfile(), EngineProfile(fsync=False), EngineProfile(cluster="analytics"))


def _sha(statements: list[str]) -> str:
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()


def test_every_migration_is_frozen() -> None:
    assert [m.version for m in MIGRATIONS] == list(FROZEN)
    for m in MIGRATIONS:
        assert tuple(_sha(m.statements(p)) for p in PROFILES) == FROZEN[m.version], m.version


def test_current_schema_is_the_last_version() -> None:
    assert MIGRATIONS[-1].version == current.VERSION


@contextlib.contextmanager
def _database(store: ClickHouseStore, settings: Settings, name: str) -> Iterator[ClickHouseStore]:
    """A store of its own database (not migrated)."""
    database = f"{name}_{int(datetime.now(UTC).timestamp() * 1000)}"
    store.command(f"CREATE DATABASE {database}")
    path = str(Path(settings.data_dir) / "clickhouse")

    def connect() -> Any:
        return clickhouse_connect.get_client(interface="chdb", path=path, database=database)

    other = ClickHouseStore(connect, store.profile, store._box, exclusive=False)
    try:
        yield other
    finally:
        other.close()
        store.command(f"DROP DATABASE {database} SYNC")


_COLUMNS = (
    "SELECT table, name, position, type, default_kind, default_expression, compression_codec, "
    "is_in_primary_key, is_in_sorting_key, is_in_partition_key FROM system.columns "
    "WHERE database = currentDatabase() ORDER BY table, position"
)
_TABLES = (
    "SELECT name, engine, engine_full, replaceAll(as_select, currentDatabase() || '.', '') "
    "FROM system.tables "
    "WHERE database = currentDatabase() ORDER BY name"
)


def test_a_fresh_store_equals_an_upgraded_one(store: ClickHouseStore, settings: Settings) -> None:
    with (
        _database(store, settings, "fresh") as fresh,
        _database(store, settings, "upgraded") as upgraded,
    ):
        assert fresh.migrate() == [f"{m.version:04d} {m.name}" for m in MIGRATIONS]
        # Version by version, as a store made by each release was upgraded by the next.
        for m in MIGRATIONS:
            migrations.migrate(upgraded, [x for x in MIGRATIONS if x.version <= m.version])
        assert fresh.applied_migrations() == upgraded.applied_migrations()
        assert fresh.query(_COLUMNS) == upgraded.query(_COLUMNS)
        tables = fresh.query(_TABLES)
        assert {r[0] for r in tables} >= {t.name for t in current.TABLES}
        assert tables == upgraded.query(_TABLES)


def test_the_runner_waits_for_the_lock_and_says_when_it_is_stuck(
    store: ClickHouseStore, settings: Settings
) -> None:
    with _database(store, settings, "locked") as other:
        other.command(f"CREATE TABLE {LOCK_TABLE} (holder String) ENGINE = Memory")
        with pytest.raises(MigrationLocked, match=LOCK_TABLE):
            migrations.migrate(other, MIGRATIONS, wait_s=0.5)
        assert other.applied_migrations() == []
        other.command(f"DROP TABLE {LOCK_TABLE}")
        assert len(other.migrate()) == len(MIGRATIONS)
        assert LOCK_TABLE not in {r[0] for r in other.query("SHOW TABLES")}


def test_two_runners_apply_each_version_once(store: ClickHouseStore, settings: Settings) -> None:
    with _database(store, settings, "racing") as first:
        second = ClickHouseStore(first._connect, first.profile, first._box, exclusive=False)
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def run(s: ClickHouseStore) -> None:
            try:
                results.append(migrations.migrate(s, MIGRATIONS))
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        second.close()
        assert not errors
        assert sorted(len(r) for r in results) == [0, len(MIGRATIONS)]
        count = first.query("SELECT count() FROM schema_migrations")[0][0]
        assert count == len(MIGRATIONS)
