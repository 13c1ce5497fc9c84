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
@given(
    st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=300, unique=True),
    st.integers(min_value=1, max_value=2**32 - 1),
)
def test_an_added_id_is_always_maybe_stored(ids: list[str], project_id: int) -> None:
    known = IdFilter(bits=1 << 16)
    known.add(project_id, id_hashes(ids))
    assert known.maybe_stored(project_id, id_hashes(ids)).all()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8, unique=True),
    st.integers(min_value=1, max_value=2**32 - 1),
)
def test_a_few_ids_set_the_same_bits_as_many(ids: list[str], project_id: int) -> None:
    """A few ids take a path of Python integers, more take numpy's: the same bits either way."""
    few, many = IdFilter(bits=1 << 12), IdFilter(bits=1 << 12)
    few.add(project_id, id_hashes(ids))
    padding = [f"{i}-pad-{n}" for i in ids for n in range(9)]  # past the small path
    many.add(project_id, id_hashes(ids + padding))
    only = IdFilter(bits=1 << 12)
    only.add(project_id, id_hashes(padding))
    assert ((few._words | only._words) == many._words).all()
    assert few.maybe_stored(project_id, id_hashes(ids)).all()
    assert many.maybe_stored(project_id, id_hashes(ids + padding)).all()


def test_new_ids_are_ruled_out_and_memory_is_fixed() -> None:
    known = IdFilter(bits=1 << 24)  # 2 MB: 200,000 ids at 84 bits each
    size = known.nbytes
    stored = [f"stored-{n}" for n in range(200_000)]
    known.load([([7] * 50_000, stored[:50_000]), ([7] * 150_000, stored[50_000:])])
    assert known.ready and known.nbytes == size == (1 << 24) // 8
    assert known.maybe_stored(7, id_hashes(stored)).all()
    fresh = [f"fresh-{n}" for n in range(50_000)]
    # Bloom filter, 7 probes, 84 bits an id: about 1 in 10^6 by chance.
    assert known.maybe_stored(7, id_hashes(fresh)).sum() <= 5
    # The same ids of another project are new there.
    assert known.maybe_stored(8, id_hashes(stored[:50_000])).sum() <= 5


def test_false_positives_stay_rare_when_full() -> None:
    known = IdFilter(bits=1 << 20)  # 128 KB for 100,000 ids: 10.5 bits an id
    known.add(1, id_hashes([f"s-{n}" for n in range(100_000)]))
    hits = known.maybe_stored(1, id_hashes([f"n-{n}" for n in range(100_000)])).mean()
    assert hits < 0.02  # (1 - e^(-7/10.5))^7 is about 0.9%: looked up, still exact


def _events(prefix: str, n: int) -> list[Event]:
    raw = [
        player(id=f"{prefix}-{i}", at=BASE + timedelta(seconds=i), session=f"{prefix}-{i // 10}")
        for i in range(n)
    ]
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    return events


def _wait_ready(st_: ClickHouseStore) -> None:
    deadline = time.monotonic() + 30
    known = st_.id_filter()
    assert known is not None
    while not known.ready:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_duplicates_are_found_through_the_filter(store: ClickHouseStore) -> None:
    assert store.exclusive  # the embedded store is its only writer
    project = store.create_project(f"idfilter-{datetime.now(UTC).timestamp()}")
    first = _events("f", 300)
    assert store.insert_events(project.id, first) == (300, 0)
    _wait_ready(store)
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
        _wait_ready(again)
        assert again.insert_events(project.id, events) == (0, 400)  # through the loaded filter
        assert again.insert_events(project.id, _events("s", 5)) == (5, 0)
    finally:
        again.close()
    assert store.count_events(project.id) == 405
