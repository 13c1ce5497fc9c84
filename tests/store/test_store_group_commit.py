"""Group commit: concurrent batches of one project written together keep their own results."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from tests.factories import BASE, player

from sessionscope.domain.events import validate_batch
from sessionscope.store.clickhouse import ClickHouseStore


def test_overlapping_concurrent_batches_count_every_id_once(store: ClickHouseStore) -> None:
    project = store.create_project(f"group-commit-{datetime.now(UTC).timestamp()}")
    # Batch i holds ids 50*i .. 50*i+99: each overlaps the next by half.
    batches = []
    for i in range(8):
        raw = [
            player(id=f"gc-{n}", at=BASE + timedelta(seconds=n), session=f"gc-{n // 10}")
            for n in range(50 * i, 50 * i + 100)
        ]
        events, problems = validate_batch(raw, now=datetime.now(UTC))
        assert not problems
        batches.append(events)
    results: list[tuple[int, int]] = [(0, 0)] * len(batches)
    start = threading.Barrier(len(batches))

    def send(i: int) -> None:
        start.wait()
        results[i] = store.insert_events(project.id, batches[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(accepted + dupes == 100 for accepted, dupes in results)
    assert sum(accepted for accepted, _ in results) == 450
    assert store.count_events(project.id) == 450
    # A resend of everything stores nothing.
    assert store.insert_events(project.id, [e for b in batches for e in b]) == (0, 800)
    stored = store.session_events(project.id, "player", ["gc-0"])["gc-0"]
    assert [e.id for e in stored] == [f"gc-{n}" for n in range(10)]
