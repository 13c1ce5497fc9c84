"""Session starts: an insert is told it may start a session unless the session surely started
earlier, and the session index keeps one start row per session under streaming inserts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.factories import BASE, player

from sessionscope.domain.events import validate_batch
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.sessionstarts import SessionStarts, session_key

_KEYS = st.sampled_from([session_key(k, f"s{n}") for k in ("player", "desktop") for n in range(8)])
_WRITES = st.lists(st.lists(st.tuples(_KEYS, st.integers(0, 50)), max_size=6), max_size=12)


@settings(max_examples=200, deadline=None)
@given(_WRITES, st.integers(0, 12), _WRITES)
def test_may_start_unless_known_to_start_at_or_before(
    loaded: list[list[tuple[str, int]]], ready_after: int, written: list[list[tuple[str, int]]]
) -> None:
    starts = SessionStarts()
    model: dict[str, int] = {}
    for block in loaded:
        for key, t in block:
            model[key] = min(model.get(key, t), t)
    before_load = written[:ready_after]
    for batch in before_load:  # writes while the load is under way: nothing is ruled out yet
        keys, times = [k for k, _ in batch], [t for _, t in batch]
        assert starts.may_start(keys, times) == [True] * len(batch)
        starts.record(keys, times)
        for key, t in batch:
            model[key] = min(model.get(key, t), t)
    starts.load([([k for k, _ in b], [t for _, t in b]) for b in loaded])
    assert starts.ready
    for batch in written[ready_after:]:
        keys, times = [k for k, _ in batch], [t for _, t in batch]
        expected = [key not in model or t < model[key] for key, t in batch]
        assert starts.may_start(keys, times) == expected
        starts.record(keys, times)
        for key, t in batch:
            model[key] = min(model.get(key, t), t)
    assert len(starts) >= len(model)


def test_many_sessions_fold_into_sorted_arrays_and_stay_exact() -> None:
    starts = SessionStarts()
    keys = [session_key("player", f"p-{n}") for n in range(200_000)]
    starts.load([(keys[:100_000], list(range(100_000))), (keys[100_000:], [7] * 100_000)])
    assert len(starts._recent) == 0 and len(starts._first) == 200_000
    # Known sessions at their start or later: not started here; earlier: maybe.
    assert not any(starts.may_start(keys[:100_000], list(range(100_000))))
    assert all(starts.may_start(keys[1:1000], [0] * 999))
    fresh = [session_key("player", f"new-{n}") for n in range(50_000)]
    assert all(starts.may_start(fresh, [10**12] * len(fresh)))  # no chance hits at 128 bits
    starts.record(fresh, [5] * len(fresh))
    starts.record(keys[:10], [-1] * 10)  # a late event moves a start earlier
    assert starts.may_start(keys[:10], [-1] * 10) == [False] * 10
    assert starts.may_start(keys[:10], [-2] * 10) == [True] * 10
    assert not any(starts.may_start(fresh, [5] * len(fresh)))
    # The same key of another kind is another session.
    assert starts.may_start([session_key("desktop", "p-1")], [10**12]) == [True]


def _wait_ready(store: ClickHouseStore, project_id: int) -> None:
    deadline = time.monotonic() + 30
    while not store._starts[project_id].ready:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _start_rows(store: ClickHouseStore, project_id: int) -> dict[str, int]:
    rows = store.query(
        "SELECT session, count() FROM session_index WHERE project_id = {p:UInt32} "
        "AND edge = 1 GROUP BY session",
        {"p": project_id},
    )
    return {str(s): int(n) for s, n in rows}


def test_streaming_inserts_add_one_start_row_per_session(store: ClickHouseStore) -> None:
    assert store.exclusive
    saved = store.bounded_page_min_rows
    store.bounded_page_min_rows = 0  # pages go through the index
    try:
        project = store.create_project(f"streaming-{datetime.now(UTC).timestamp()}")
        raw: list[dict[str, Any]] = []
        for n in range(12):  # twelve sessions, a new one every minute, each lasting 10 minutes
            for k in range(10):
                at = BASE + timedelta(minutes=n + k)
                raw.append(player("playing", at=at, session=f"st-{n:02d}", id=f"st-{n}-{k}"))
        raw.sort(key=lambda e: str(e["time"]))
        events, problems = validate_batch(raw, now=datetime.now(UTC))
        assert not problems
        store.insert_events(project.id, events[:1])
        _wait_ready(store, project.id)
        for i in range(1, len(events), 4):  # as they arrive: a few events an insert
            store.insert_events(project.id, events[i : i + 4])
        assert _start_rows(store, project.id) == {f"st-{n:02d}": 1 for n in range(12)}

        # An event sent late, before its session's known start, moves the start: a new row.
        late, _ = validate_batch(
            [player("startup", at=BASE - timedelta(minutes=1), session="st-05", id="late")],
            now=datetime.now(UTC),
        )
        store.insert_events(project.id, late)
        assert _start_rows(store, project.id)["st-05"] == 2

        full = [r["session"] for r in store.session_rows("player", project.id, limit=None)]
        assert full[0] == "st-11" and full[-1] == "st-05"
        for limit in (1, 3, 5):
            pages: list[str] = []
            before = None
            while True:
                rows = store.session_rows("player", project.id, before=before, limit=limit)
                pages += [r["session"] for r in rows]
                if len(rows) < limit:
                    break
                before = (rows[-1]["start"], rows[-1]["session"])
            assert pages == full
    finally:
        store.bounded_page_min_rows = saved


def test_a_store_that_is_not_the_only_writer_indexes_every_insert(store: ClickHouseStore) -> None:
    # As on a ClickHouse server shared by several sessionscope servers.
    shared = ClickHouseStore(store._connect, store.profile, store._box, exclusive=False)
    try:
        project = shared.create_project(f"shared-{datetime.now(UTC).timestamp()}")
        raw = [player("playing", at=BASE + timedelta(minutes=k), session="sh") for k in range(3)]
        events, _ = validate_batch(raw, now=datetime.now(UTC))
        for e in events:
            shared.insert_events(project.id, [e])
        assert _start_rows(shared, project.id) == {"sh": 3}  # as before: one per insert
        (row,) = shared.session_rows("player", project.id, limit=5)
        assert row["start"] == BASE
    finally:
        shared.close()


def test_memory_is_bounded_and_forgets_the_earliest_sessions() -> None:
    starts = SessionStarts(capacity=1_000)
    starts.load([([f"player\x1fs{i}" for i in range(5_000)], list(range(5_000)))])
    assert len(starts) == 1_000
    late = 10**12
    # The newest are known (an insert cannot start them); the forgotten may start again.
    assert starts.may_start(["player\x1fs4999", "player\x1fs10", "player\x1fnew"], [late] * 3) == [
        False,
        True,
        True,
    ]
