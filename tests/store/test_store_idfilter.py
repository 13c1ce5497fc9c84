"""The filter of stored ids: never "surely new" for a stored id, and deduplication stays exact."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.factories import BASE, player

from sessionscope.domain.events import Event, validate_batch
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.idfilter import IdFilter, id_hashes


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=300, unique=True))
def test_an_added_id_is_always_maybe_stored(ids: list[str]) -> None:
    known = IdFilter()
    known.add(id_hashes(ids))
    assert known.maybe_stored(id_hashes(ids)).all()


def test_new_ids_are_ruled_out_and_the_runs_stay_few() -> None:
    known = IdFilter()
    stored = [f"stored-{n}" for n in range(200_000)]
    known.load([stored[:50_000], stored[50_000:]])
    assert known.ready
    assert known.maybe_stored(id_hashes(stored)).all()
    fresh = [f"fresh-{n}" for n in range(50_000)]
    assert not known.maybe_stored(id_hashes(fresh)).any()  # 64-bit hashes: no chance hits here
    assert known.nbytes == 8 * len(stored)
    assert len(known._runs) <= 18  # a few sorted runs, merged as they grow


def _events(prefix: str, n: int) -> list[Event]:
    raw = [
        player(id=f"{prefix}-{i}", at=BASE + timedelta(seconds=i), session=f"{prefix}-{i // 10}")
        for i in range(n)
    ]
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    return events


def _wait_ready(st_: ClickHouseStore, project_id: int) -> None:
    deadline = time.monotonic() + 30
    while not st_._id_filters[project_id].ready:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_duplicates_are_found_through_the_filter(store: ClickHouseStore) -> None:
    assert store.exclusive  # the embedded store is its only writer
    project = store.create_project(f"idfilter-{datetime.now(UTC).timestamp()}")
    first = _events("f", 300)
    assert store.insert_events(project.id, first) == (300, 0)
    _wait_ready(store, project.id)
    # Half old, half new, and a repeat inside the batch.
    mixed = first[150:] + _events("g", 150) + first[:1]
    assert store.insert_events(project.id, mixed) == (150, 151)
    assert store.count_events(project.id) == 450


def test_a_restarted_store_loads_what_was_stored(store: ClickHouseStore) -> None:
    project = store.create_project(f"idfilter-restart-{datetime.now(UTC).timestamp()}")
    events = _events("r", 400)
    assert store.insert_events(project.id, events) == (400, 0)
    # Another store object on the same engine starts with no memory of those ids.
    again = ClickHouseStore(store._connect, store.profile, store._box, exclusive=True)
    try:
        assert again.insert_events(project.id, events[:10]) == (0, 10)  # by lookups, loading
        _wait_ready(again, project.id)
        assert again.insert_events(project.id, events) == (0, 400)  # through the loaded filter
        assert again.insert_events(project.id, _events("s", 5)) == (5, 0)
    finally:
        again.close()
    assert store.count_events(project.id) == 405
