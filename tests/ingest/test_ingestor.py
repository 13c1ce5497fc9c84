"""The ingestor on the shared store with a private journal: group commit and deduplication,
a view that fails an insert and the retry, backpressure, and the replay at a start.

Each test makes its own project and its own journal directory (``tmp_path``); the store is the
session's embedded engine (one per process).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event, validate_batch
from sessionscope.ingest import Ingestor, IngestTuning, Overloaded, records
from sessionscope.ingest import ingestor as ingestor_module
from sessionscope.ingest.journal import Journal, Record
from sessionscope.service import SessionService
from sessionscope.store.clickhouse import ClickHouseStore
from tests.factories import BASE, player

pytestmark = pytest.mark.timeout(120)

_names = itertools.count(1)


def new_project(store: ClickHouseStore, label: str) -> Project:
    return store.create_project(f"ingestor-{label}-{next(_names)}-{time.time_ns()}")


def events(*raw: dict[str, Any]) -> list[Event]:
    out, problems = validate_batch(list(raw), now=datetime.now(UTC))
    assert not problems
    return out


@contextmanager
def running(
    store: ClickHouseStore, directory: Path, tuning: IngestTuning | None = None
) -> Iterator[Ingestor]:
    ingestor = Ingestor(store, directory, tuning).start()
    try:
        yield ingestor
    finally:
        ingestor.close()


def player_events(prefix: str, n: int, seed: int) -> list[Event]:
    """``n`` player events with ids ``<prefix>-<i>`` in sessions of 10, with random types and
    durations (and some without a duration)."""
    rng = random.Random(seed)
    raw = []
    for i in range(n):
        kind = rng.choice(["playing", "playing", "rebuffering", "startup", "player_start", "error"])
        extra: dict[str, Any] = {}
        if rng.random() < 0.9:
            extra["duration_ms"] = rng.randrange(0, 60_000)
        raw.append(
            player(
                kind,
                at=BASE + timedelta(seconds=i),
                session=f"{prefix}-s{i // 10}",
                id=f"{prefix}-{i}",
                **extra,
            )
        )
    return events(*raw)


def expected_sums(sent: list[Event]) -> dict[str, tuple[int, ...]]:
    """Per session: (events, playing count, playing ms, rebuffering ms, startup ms, errors)."""
    out: dict[str, list[int]] = {}
    for e in sent:
        s = out.setdefault(e.session, [0] * 6)
        d = e.duration_ms or 0
        s[0] += 1
        s[1] += e.type == "playing"
        s[2] += d if e.type == "playing" else 0
        s[3] += d if e.type == "rebuffering" else 0
        s[4] += d if e.type == "startup" else 0
        s[5] += e.type == "error"
    return {k: tuple(v) for k, v in out.items()}


def stored_sums(store: ClickHouseStore, project_id: int) -> dict[str, tuple[int, ...]]:
    """The same sums from the player aggregates as stored (every part summed, no FINAL: a
    block written twice would count twice here)."""
    rows = store.query(
        "SELECT session, sum(events), sum(n_playing), sum(d_playing), sum(d_rebuffering), "
        "sum(d_startup), sum(n_error) FROM player_sessions WHERE project_id = {p:UInt32} "
        "GROUP BY session",
        {"p": project_id},
    )
    return {str(r[0]): tuple(int(x) for x in r[1:]) for r in rows}


def assert_stored_once(store: ClickHouseStore, project_id: int, sent: list[Event]) -> None:
    """Every sent event stored exactly once: in the events table, the id index, and the
    player aggregates (and the session API built on them)."""
    ids = {e.id for e in sent}
    assert len(ids) == len(sent)
    assert store.count_events(project_id) == len(ids)
    rows, distinct = store.query(
        "SELECT count(), uniqExact(id) FROM events WHERE project_id = {p:UInt32}",
        {"p": project_id},
    )[0]
    assert (rows, distinct) == (len(ids), len(ids))
    (id_rows,) = store.query(
        "SELECT count() FROM event_ids WHERE project_id = {p:UInt32}", {"p": project_id}
    )[0]
    assert id_rows == len(ids)
    assert stored_sums(store, project_id) == expected_sums(sent)
    project = store.get_project(project_id)
    assert project is not None
    listed = SessionService(store).player_sessions(project, limit=None)
    want = expected_sums(sent)
    assert {s.session: (s.events, s.metrics.playing_ms, s.metrics.errors) for s in listed} == {
        k: (v[0], v[2], v[5]) for k, v in want.items()
    }


# ---------------------------------------------------------------------------- group commit


def test_overlapping_concurrent_batches_count_every_id_once(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "group")
    # Batch i holds ids 50*i .. 50*i+99: each overlaps the next by half.
    every = player_events("gc", 50 * 8 + 50, seed=1)
    batches = [every[50 * i : 50 * i + 100] for i in range(8)]
    results: list[tuple[int, int]] = [(0, 0)] * len(batches)
    start = threading.Barrier(len(batches))
    with running(store, tmp_path / "journal", IngestTuning(linger_s=0.05)) as ingestor:

        def send(i: int) -> None:
            start.wait()
            results[i] = ingestor.submit(project.id, batches[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(accepted + dupes == 100 for accepted, dupes in results)
        assert sum(accepted for accepted, _ in results) == 450
        assert ingestor.barrier()
        assert store.count_events(project.id) == 450
        # A resend of everything, now stored or waiting, stores nothing.
        assert ingestor.submit(project.id, [e for b in batches for e in b]) == (0, 800)
        # Also while some of it still waits in the journal.
        more = player_events("gc2", 30, seed=2)
        assert ingestor.submit(project.id, more) == (30, 0)
        assert ingestor.submit(project.id, more + more[:5]) == (0, 35)
        assert ingestor.barrier()
        status = ingestor.status()
        assert status["pending_events"] == 0
        assert status["acknowledged_seq"] == status["loaded_seq"]
        assert status["last_error"] is None
    assert_stored_once(store, project.id, every[:450] + more)
    stored = store.session_events(project.id, "player", ["gc-s0"])["gc-s0"]
    assert [e.id for e in stored] == [f"gc-{n}" for n in range(10)]


def test_repeats_inside_one_batch_and_the_empty_batch(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "repeats")
    sent = player_events("rp", 20, seed=3)
    with running(store, tmp_path / "journal") as ingestor:
        assert ingestor.submit(project.id, []) == (0, 0)
        assert ingestor.submit(project.id, sent + sent[::-1]) == (20, 20)
        assert ingestor.journal.pending()[:2] == (1, 20)  # one record: the accepted events
        assert ingestor.barrier()
    assert_stored_once(store, project.id, sent)


# ---------------------------------------------------------------------------- a failing view


@contextmanager
def failing_view(store: ClickHouseStore, project_id: int) -> Iterator[str]:
    """A view on ``events`` that fails every insert holding a row of ``project_id`` while its
    flag table has a row; yields the flag table's name. Dropped afterwards."""
    suffix = f"{project_id}_{time.time_ns()}"
    flag, sink, view = f"fail_flag_{suffix}", f"fail_sink_{suffix}", f"fail_mv_{suffix}"
    try:
        store.command(f"CREATE TABLE {flag} (x UInt8) ENGINE = MergeTree ORDER BY x")
        store.command(
            f"CREATE TABLE {sink} (project_id UInt32) ENGINE = MergeTree ORDER BY project_id"
        )
        store.command(
            f"CREATE MATERIALIZED VIEW {view} TO {sink} AS SELECT project_id FROM events "
            f"WHERE throwIf(project_id = {project_id} AND (SELECT count() FROM {flag}) > 0, "
            "'test view failure') = 0"
        )
        yield flag
    finally:
        for name in (view, sink, flag):
            store.command(f"DROP TABLE IF EXISTS {name} SYNC")


def test_a_view_failing_an_insert_then_the_retry_doubles_nothing(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "failview")
    before = player_events("fv-a", 40, seed=4)
    sent = player_events("fv-b", 120, seed=5)
    with (
        running(store, tmp_path / "journal", IngestTuning(linger_s=0.01)) as ingestor,
        failing_view(store, project.id) as flag,
    ):
        # Stored before the failure: a failing insert later must not touch these.
        assert ingestor.submit(project.id, before) == (40, 0)
        assert ingestor.barrier(timeout_s=30)
        store.command(f"INSERT INTO {flag} VALUES (1)")
        # Acknowledged (in the journal) in three batches; the loader's block fails.
        for chunk in (sent[:50], sent[50:51], sent[51:]):
            assert ingestor.submit(project.id, chunk) == (len(chunk), 0)
        assert not ingestor.barrier(timeout_s=2)
        # What the failed insert left (chDB 26.9: the rows in the events table, none in the
        # views), so that the retry below has a part of its block to skip, and the rest to add.
        # The loader's first block may have begun before the later batches were acknowledged:
        # it holds whole batches.
        (partial,) = store.query(
            "SELECT count() FROM events WHERE project_id = {p:UInt32} AND startsWith(id, 'fv-b')",
            {"p": project.id},
        )[0]
        assert partial in (0, 50, 51, len(sent))
        status = ingestor.status()
        assert "test view failure" in (status["last_error"] or "")
        assert status["pending_events"] == len(sent)
        assert ingestor.journal.block() is not None  # the block stays marked for the retry
        # Still acknowledged as such: a resend meanwhile is all duplicates.
        assert ingestor.submit(project.id, sent[:10]) == (0, 10)
        # The insert reached the events table and some views before the failing one (or not):
        # either way the retry must complete it without doubling anything.
        store.command(f"TRUNCATE TABLE {flag}")
        assert ingestor.barrier(timeout_s=30)
        status = ingestor.status()
        assert status["last_error"] is None
        assert status["pending_events"] == 0
        assert ingestor.journal.pending()[0] == 0
        assert ingestor.journal.block() is None
        # And the ingestor goes on.
        after = player_events("fv-c", 15, seed=6)
        assert ingestor.submit(project.id, after) == (15, 0)
        assert ingestor.barrier(timeout_s=30)
    assert_stored_once(store, project.id, before + sent + after)


# ---------------------------------------------------------------------------- backpressure


def test_backpressure_refuses_past_the_bound_and_journals_nothing_of_it(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "backpressure")
    first = player_events("bp-a", 800, seed=7)
    refused = player_events("bp-b", 300, seed=8)
    tuning = IngestTuning(max_pending_events=1000, linger_s=60, block_events=1_000_000)
    with running(store, tmp_path / "journal", tuning) as ingestor:
        assert ingestor.submit(project.id, first) == (800, 0)
        records, pending_events, last = ingestor.journal.pending()
        assert (records, pending_events) == (1, 800)
        with pytest.raises(Overloaded) as exc:
            ingestor.submit(project.id, refused)
        assert exc.value.retry_after_s >= 1
        # Nothing of the refused batch is journaled or remembered.
        assert ingestor.journal.pending() == (1, 800, last)
        assert ingestor.status()["pending_events"] == 800
        # Within the bound still goes in (the loader lingers: 60 s).
        assert ingestor.submit(project.id, refused[:200]) == (200, 0)
        with pytest.raises(Overloaded):
            ingestor.submit(project.id, refused[200:201])
        assert store.count_events(project.id) == 0
        t0 = time.monotonic()
        assert ingestor.barrier()  # a read asks the lingering loader to write at once
        assert time.monotonic() - t0 < 30
        assert store.count_events(project.id) == 1000
        # Once loaded there is room again; the retry of the refused batch is accepted.
        assert ingestor.submit(project.id, refused) == (100, 200)
        assert ingestor.barrier()
    assert_stored_once(store, project.id, first + refused)


def test_a_batch_larger_than_the_bound_goes_in_when_nothing_waits(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "large")
    big = player_events("lg", 1500, seed=9)
    tuning = IngestTuning(max_pending_events=1000, linger_s=60, block_events=1_000_000)
    with running(store, tmp_path / "journal", tuning) as ingestor:
        assert ingestor.submit(project.id, big) == (1500, 0)
        with pytest.raises(Overloaded):
            ingestor.submit(project.id, player_events("lg2", 1, seed=10))
        assert ingestor.barrier()
    assert_stored_once(store, project.id, big)


def test_a_group_loaded_before_the_writer_registers_it_leaves_nothing_behind(
    store: ClickHouseStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(store, "register-race")
    first = player_events("rr-a", 100, seed=14)
    second = player_events("rr-b", 600, seed=15)
    later = player_events("rr-c", 10, seed=16)
    tuning = IngestTuning(max_pending_events=1000, linger_s=0.2)
    with running(store, tmp_path / "journal", tuning) as ingestor:
        append = ingestor.journal.append
        committed = threading.Event()

        def descheduled_after_commit(batches: Sequence[tuple[int, int, bytes]]) -> list[int]:
            seqs = append(batches)  # durable, and visible to the loader's connection
            if batches[0][1] == len(second):
                committed.set()
                time.sleep(0.6)  # the writer thread not scheduled for a while (GIL, CPU)
            return seqs

        read = ingestor.journal.read

        def read_once_the_second_is_committed(
            after: int, max_events: int, upto: int | None = None
        ) -> list[Record]:
            assert committed.wait(10)
            return read(after, max_events, upto)

        monkeypatch.setattr(ingestor.journal, "append", descheduled_after_commit)
        monkeypatch.setattr(ingestor.journal, "read", read_once_the_second_is_committed)
        # The loader lingers 0.2 s on the first batch, then reads the journal while the
        # second is committed there and not yet registered by the writer: it must leave it.
        assert ingestor.submit(project.id, first) == (100, 0)
        assert ingestor.submit(project.id, second) == (600, 0)
        monkeypatch.setattr(ingestor.journal, "append", append)
        monkeypatch.setattr(ingestor.journal, "read", read)
        deadline = time.monotonic() + 30
        while ingestor.journal.pending()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ingestor.journal.pending() == (0, 0, 0)
        assert ingestor.status()["blocks_loaded"] == 2  # the second once it was registered
        assert store.count_events(project.id) == 700  # stored once: nothing lost or doubled
        # A batch acknowledged afterwards is loaded once the loader's linger is over, with no
        # read asking for it ...
        assert ingestor.submit(project.id, later) == (10, 0)
        deadline = time.monotonic() + 10 * tuning.linger_s
        while not ingestor.caught_up() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ingestor.caught_up(), ingestor.status()
        # ... nothing is counted as waiting once everything is loaded ...
        assert ingestor.barrier(timeout_s=30)
        assert ingestor.status()["pending_events"] == 0
        # ... and a batch within the bound is accepted.
        assert ingestor.submit(project.id, player_events("rr-d", 500, seed=17)) == (500, 0)


# ---------------------------------------------------------------------------- replay


def _encode(project_id: int, events: Sequence[Event]) -> bytes:
    """A record's body as the ingestor writes it (msgpack under 64 events, Arrow from 64)."""
    return records.encode(project_id, events)


def journal_crashed_during_a_block(
    directory: Path, project_id: int, sent: list[Event]
) -> tuple[str, list[int]]:
    """A journal as a crash leaves it: ``sent`` acknowledged in batches of 40, the first three
    records marked as the block being loaded. Return the journal id and the sequence numbers."""
    journal = Journal(directory)
    try:
        seqs: list[int] = []
        for start in range(0, len(sent), 40):
            batch = sent[start : start + 40]
            seqs += journal.append([(project_id, len(batch), _encode(project_id, batch))])
        journal.begin_block(seqs[0], seqs[2])
        return journal.id, seqs
    finally:
        journal.close()


@pytest.mark.parametrize("block_inserted", [False, True], ids=["before-insert", "after-insert"])
def test_start_loads_the_journal_and_the_cut_block_once(
    store: ClickHouseStore, tmp_path: Path, block_inserted: bool
) -> None:
    project = new_project(store, "replay")
    sent = player_events("rl", 400, seed=11)
    directory = tmp_path / "journal"
    journal_id, seqs = journal_crashed_during_a_block(directory, project.id, sent)
    assert len(seqs) == 10
    if block_inserted:
        # The crash came after the block's insert and before its records were dropped: the
        # start writes the same records under the same token again.
        store.write_events([(project.id, sent[:120])], f"{journal_id}-{seqs[0]}-{seqs[2]}")
        assert store.count_events(project.id) == 120
    tuning = IngestTuning(block_events=100)  # the rest in several blocks
    ingestor = Ingestor(store, directory, tuning)
    status = ingestor.status()
    assert status["pending_events"] == 400
    assert ingestor.caught_up() is False
    ingestor.start()
    try:
        # Loaded before start returns: a read right away sees everything.
        assert ingestor.caught_up()
        assert store.count_events(project.id) == 400
        assert ingestor.journal.pending() == (0, 0, 0)
        assert ingestor.journal.block() is None
        # What was acknowledged before the start is still deduplicated after it.
        assert ingestor.submit(project.id, sent[::7]) == (0, len(sent[::7]))
        (new,) = player_events("rl-new", 1, seed=12)
        assert ingestor.submit(project.id, [new]) == (1, 0)
        assert ingestor.barrier()
        assert ingestor.status()["acknowledged_seq"] > seqs[-1]
    finally:
        ingestor.close()
    assert_stored_once(store, project.id, [*sent, new])


def test_start_again_after_the_block_is_loaded_changes_nothing(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    project = new_project(store, "replay-twice")
    sent = player_events("rt", 200, seed=13)
    directory = tmp_path / "journal"
    journal_crashed_during_a_block(directory, project.id, sent)
    with running(store, directory):
        pass
    with running(store, directory) as ingestor:
        assert ingestor.journal.pending() == (0, 0, 0)
    assert_stored_once(store, project.id, sent)


def test_a_burst_of_large_bodies_keeps_the_loader_waiting_unless_a_read_asks(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    """While large bodies are being decoded, a full block waits (decoding is what keeps
    clients waiting); it goes once the burst is over, past two blocks, or when a read asks."""
    project = new_project(store, "burst")
    tuning = IngestTuning(block_events=100, linger_s=60, burst_gap_s=0.05)
    with running(store, tmp_path / "journal", tuning) as ingestor:
        with ingestor.decoding():  # a large body is being decoded
            assert ingestor.submit(project.id, player_events("bu-a", 150, seed=1)) == (150, 0)
            time.sleep(0.5)  # a full block: without the burst it would load at once
            assert store.count_events(project.id) == 0
            assert ingestor.barrier()  # a read asks: loaded at once
            assert store.count_events(project.id) == 150
            # Two blocks' worth waiting: loaded during the burst too.
            assert ingestor.submit(project.id, player_events("bu-b", 200, seed=2)) == (200, 0)
            assert _eventually(ingestor.caught_up)
            assert ingestor.submit(project.id, player_events("bu-c", 120, seed=3)) == (120, 0)
            time.sleep(0.3)
            assert not ingestor.caught_up()
        assert _eventually(ingestor.caught_up)  # the burst is over: loaded
        assert store.count_events(project.id) == 470


def _eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------------------- the loop's commits


class _Spy:
    """Counts the journal's appends by path: the writer's (``append``) and the loop's
    (``try_append``, with how many found the journal busy)."""

    def __init__(self, journal: Journal) -> None:
        self.appends = self.loop_appends = self.busy = 0
        append, try_append = journal.append, journal.try_append

        def counted_append(batches: Any) -> list[int]:
            self.appends += 1
            return append(batches)

        def counted_try_append(batches: Any) -> list[int] | None:
            self.loop_appends += 1
            seqs = try_append(batches)
            self.busy += seqs is None
            return seqs

        journal.append = counted_append  # type: ignore[method-assign]
        journal.try_append = counted_try_append  # type: ignore[method-assign]


def test_batches_sent_one_at_a_time_are_committed_by_the_loop_and_stored_once(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    """One client sending one event at a time: after a few commits of one batch each, the
    event loop commits itself. Duplicates are found as by the writer: waiting in the journal
    (on the loop), stored (the writer asks the store); a journal busy with the loader's write
    sends the batch to the writer; concurrent batches send the next ones to the writer."""
    project = new_project(store, "loop")
    sent = player_events("lp", 40, seed=5)
    with running(store, tmp_path / "journal", IngestTuning(linger_s=60)) as ingestor:
        spy = _Spy(ingestor.journal)
        assert _eventually(lambda: bool(getattr(store.id_filter(), "ready", False)))

        async def one(event: Event) -> tuple[int, int]:
            return await ingestor.submit_prepared(ingestor.prepare(project.id, [event]))

        async def scenario() -> None:
            for event in sent[:20]:
                assert await one(event) == (1, 0)
            # The first ones by the writer (and a few more while it finishes its last commit
            # after answering), then the loop.
            assert spy.appends + spy.loop_appends == 20 and spy.loop_appends >= 12
            appends, loop_appends = spy.appends, spy.loop_appends
            # A resend while the events wait in the journal: found on the loop.
            assert await one(sent[5]) == (0, 1)
            assert (spy.appends, spy.loop_appends) == (appends, loop_appends)
            # The loader's write under way: the loop does not wait for it, the writer does.
            with ingestor.journal._write_lock:
                pending = asyncio.ensure_future(one(sent[20]))
                await asyncio.sleep(0.2)
                assert not pending.done()
            assert await pending == (1, 0)
            assert (spy.busy, spy.appends) == (1, appends + 1)
            for event in sent[21:25]:
                await asyncio.sleep(0.05)  # the writer done with its commit
                assert await one(event) == (1, 0)
            assert spy.loop_appends == loop_appends + 1 + 4
            # Concurrent batches: committed together once, then the writer takes them.
            await asyncio.sleep(0.05)
            results = await asyncio.gather(*(one(e) for e in sent[25:33]))
            assert results == [(1, 0)] * 8 and spy.loop_appends == loop_appends + 6
            results = await asyncio.gather(*(one(e) for e in sent[33:40]))
            assert results == [(1, 0)] * 7 and spy.loop_appends == loop_appends + 6

        asyncio.run(scenario())
        assert ingestor.barrier()

        async def resend() -> list[tuple[int, int]]:
            # Stored now: the id filter cannot rule them out, so the writer asks the store.
            return [await one(e) for e in sent[:5]]

        appends, loop_appends = spy.appends, spy.loop_appends
        assert asyncio.run(resend()) == [(0, 1)] * 5
        assert (spy.appends, spy.loop_appends) == (appends, loop_appends)
        assert ingestor.status()["last_error"] is None
    assert_stored_once(store, project.id, sent)


def test_a_slow_commit_of_the_loop_sends_the_next_ones_to_the_writer(
    store: ClickHouseStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow disk must not stall every request: after a commit of the loop slower than
    ``LOOP_COMMIT_SLOW_S`` (here: any), the writer commits for ``LOOP_COMMIT_PAUSE_S``."""
    monkeypatch.setattr(ingestor_module, "LOOP_COMMIT_SLOW_S", 0.0)
    project = new_project(store, "slow")
    sent = player_events("sl", 12, seed=6)
    with running(store, tmp_path / "journal", IngestTuning(linger_s=60)) as ingestor:
        spy = _Spy(ingestor.journal)
        assert _eventually(lambda: bool(getattr(store.id_filter(), "ready", False)))

        async def scenario() -> None:
            for event in sent:
                await asyncio.sleep(0.05)  # the writer done with its commit
                batch = ingestor.prepare(project.id, [event])
                assert await ingestor.submit_prepared(batch) == (1, 0)

        asyncio.run(scenario())
        assert (spy.appends, spy.loop_appends) == (11, 1)
        assert ingestor.barrier()
    assert_stored_once(store, project.id, sent)
