"""Migrations: a store made by an earlier version is brought up to date with its data intact.

The store of version 1 is built in a database of its own on the shared embedded engine (chDB
runs one engine per process), filled, then migrated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from tests.factories import BASE, desktop, endpoint, player

from sessionscope.config import Settings
from sessionscope.domain.events import validate_batch
from sessionscope.store import clickhouse as ch
from sessionscope.store.schema import MIGRATIONS


@pytest.fixture
def old_store(
    store: ch.ClickHouseStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    database = f"upgrade_{int(datetime.now(UTC).timestamp() * 1000)}"
    store.command(f"CREATE DATABASE {database}")
    path = str(Path(settings.data_dir) / "clickhouse")

    def connect() -> Any:
        return clickhouse_connect.get_client(interface="chdb", path=path, database=database)

    monkeypatch.setattr(ch, "MIGRATIONS", MIGRATIONS[:1])
    old = ch.ClickHouseStore(connect, store.profile, store._box, exclusive=True)
    old.migrate()
    try:
        yield old
    finally:
        old.close()
        store.command(f"DROP DATABASE {database} SYNC")


def test_version_2_keeps_first_pages_and_indexes_stored_sessions(
    old_store: ch.ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert old_store.applied_migrations() == [1]
    project = old_store.create_project("old")
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

    monkeypatch.setattr(ch, "MIGRATIONS", MIGRATIONS)
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
