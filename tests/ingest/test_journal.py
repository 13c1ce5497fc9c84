"""The ingest journal on its own (``sessionscope.ingest.journal``): no engine needed.

Appends, the loader's reads and block marks, sequence numbers that are never reused, one user
per directory, and what SQLite's WAL framing does with a torn or truncated tail after a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionscope.ingest.journal import Journal, JournalBusy, Record


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal")
    yield j
    j.close()


def body(seq_hint: int, size: int = 40) -> bytes:
    """A recognisable body of ``size`` bytes."""
    stem = f"body-{seq_hint}-".encode()
    return (stem * (size // len(stem) + 1))[:size]


def test_append_read_and_pending(journal: Journal) -> None:
    assert journal.pending() == (0, 0, 0)
    assert journal.read(0, 100) == []
    seqs = journal.append([(1, 3, body(1)), (2, 5, body(2)), (1, 4, body(3))])
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert journal.pending() == (3, 12, seqs[-1])
    records = journal.read(0, 1000)
    assert records == [
        Record(seqs[0], 1, 3, body(1)),
        Record(seqs[1], 2, 5, body(2)),
        Record(seqs[2], 1, 4, body(3)),
    ]
    # Up to about max_events: whole records, and at least one even when it is larger.
    assert [r.seq for r in journal.read(0, 8)] == seqs[:2]
    assert [r.seq for r in journal.read(0, 7)] == seqs[:1]
    assert [r.seq for r in journal.read(0, 1)] == seqs[:1]
    assert [r.seq for r in journal.read(seqs[0], 1000)] == seqs[1:]
    assert journal.read(seqs[-1], 1000) == []
    assert journal.read_range(seqs[1], seqs[2]) == records[1:]
    # A second commit continues the sequence.
    (more,) = journal.append([(3, 1, body(4))])
    assert more > seqs[-1]
    assert journal.pending() == (4, 13, more)


@pytest.mark.parametrize("batches", [1, 7, 2_500])  # one statement, and several in one commit
def test_an_append_returns_the_sequence_number_of_each_batch(
    journal: Journal, batches: int
) -> None:
    (first,) = journal.append([(9, 1, body(0))])
    journal.end_block(first)  # the journal empty again: numbers still go on
    group = [(i % 3, i + 1, body(i, 10 + i % 50)) for i in range(batches)]
    seqs = journal.append(group)
    assert seqs == list(range(first + 1, first + 1 + batches))
    assert journal.read(0, 10**9) == [
        Record(seq, p, c, b) for seq, (p, c, b) in zip(seqs, group, strict=True)
    ]


def test_block_marks_survive_a_reopen_and_end_block_drops_the_records(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    j = Journal(directory)
    seqs = j.append([(1, 2, body(1)), (1, 2, body(2)), (1, 2, body(3))])
    assert j.block() is None
    j.begin_block(seqs[0], seqs[1])
    assert j.block() == (seqs[0], seqs[1])
    journal_id = j.id
    j.close()  # a crash after begin_block: the mark is durable

    j = Journal(directory)
    try:
        assert j.id == journal_id
        assert j.block() == (seqs[0], seqs[1])
        assert [r.seq for r in j.read_range(*seqs[:2])] == seqs[:2]
        j.end_block(seqs[1])
        assert j.block() is None
        assert j.pending() == (1, 2, seqs[2])
        assert [r.seq for r in j.read(0, 100)] == [seqs[2]]
        # Marking a block replaces the previous mark.
        j.begin_block(seqs[2], seqs[2])
        j.begin_block(seqs[2], seqs[2] + 5)
        assert j.block() == (seqs[2], seqs[2] + 5)
        j.end_block(seqs[2])
        assert j.block() is None
        assert j.pending() == (0, 0, 0)
    finally:
        j.close()


def test_sequence_numbers_are_never_reused(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    j = Journal(directory)
    seqs = j.append([(1, 1, body(1)), (1, 1, body(2))])
    j.begin_block(seqs[0], seqs[-1])
    j.end_block(seqs[-1])
    assert j.pending() == (0, 0, 0)
    (after_delete,) = j.append([(1, 1, body(3))])
    assert after_delete > seqs[-1]
    j.end_block(after_delete)
    journal_id = j.id
    j.close()

    # Every record deleted and the journal reopened: the sequence still goes on (a block token
    # ``<journal id>-<first>-<last>`` names the same records forever).
    j = Journal(directory)
    try:
        assert j.pending() == (0, 0, 0)
        assert j.id == journal_id
        (reopened,) = j.append([(1, 1, body(4))])
        assert reopened > after_delete
    finally:
        j.close()


def test_one_journal_per_directory(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    first = Journal(directory)
    try:
        with pytest.raises(JournalBusy):
            Journal(directory)
        # The refused one left the lock alone: the first still works.
        assert first.append([(1, 1, body(1))]) == [1]
    finally:
        first.close()
    again = Journal(directory)  # free once closed
    try:
        assert again.pending() == (1, 1, 1)
    finally:
        again.close()
    other = Journal(tmp_path / "other")  # another directory is another journal
    other.close()


# ---------------------------------------------------------------------------- torn tails

_WAL_HEADER = 32
_FRAME_HEADER = 24
COMMITS = 6


def crashed_copy(tmp_path: Path) -> tuple[Path, list[Record], int]:
    """Commit ``COMMITS`` appends (one per commit, the later ones spanning several pages),
    and copy the journal's files while it is open, as a crash would leave them: the records
    are in the WAL only (the journal never checkpoints on its own). Return the copy's
    directory, the records, and the page size."""
    live = Journal(tmp_path / "live")
    try:
        records: list[Record] = []
        for i in range(COMMITS):
            payload = body(i, 60 if i < 3 else 9000 + 1000 * i)
            (seq,) = live.append([(7, i + 1, payload)])
            records.append(Record(seq, 7, i + 1, payload))
        with contextlib.closing(sqlite3.connect(live.path)) as db:
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        copy = tmp_path / "crashed"
        copy.mkdir()
        for name in ("journal.db", "journal.db-wal"):  # no -shm: rebuilt from the WAL
            shutil.copy(live.directory / name, copy / name)
    finally:
        live.close()
    wal = copy / "journal.db-wal"
    frames, rest = divmod(wal.stat().st_size - _WAL_HEADER, _FRAME_HEADER + page_size)
    # Every commit is there as frames (the large bodies take several pages each).
    assert rest == 0 and frames >= COMMITS + 2 * 3, (wal.stat().st_size, page_size)
    return copy, records, page_size


def reopen_and_check(directory: Path, expected: list[Record]) -> None:
    """The journal opens, holds exactly ``expected``, and takes (durable) appends again."""
    j = Journal(directory)
    try:
        assert j.read(0, 10**9) == expected
        assert j.pending() == (len(expected), sum(r.count for r in expected), expected[-1].seq)
        (new,) = j.append([(7, 99, b"after the crash")])
        assert new > expected[-1].seq
        assert [r.seq for r in j.read(0, 10**9)] == [r.seq for r in expected] + [new]
    finally:
        j.close()
    j = Journal(directory)
    try:
        assert j.read(0, 10**9)[-1] == Record(new, 7, 99, b"after the crash")
    finally:
        j.close()


def test_untouched_copy_has_every_commit(tmp_path: Path) -> None:
    copy, records, _ = crashed_copy(tmp_path)
    reopen_and_check(copy, records)


def test_truncated_wal_tail_loses_only_the_last_commit(tmp_path: Path) -> None:
    copy, records, page_size = crashed_copy(tmp_path)
    wal = copy / "journal.db-wal"
    # Cut in the middle of the last frame (the last commit's commit frame).
    os.truncate(wal, wal.stat().st_size - page_size // 2)
    reopen_and_check(copy, records[:-1])


def test_wal_tail_cut_at_a_frame_boundary_loses_only_the_last_commit(tmp_path: Path) -> None:
    copy, records, page_size = crashed_copy(tmp_path)
    wal = copy / "journal.db-wal"
    # The last frame missing whole: its commit has no commit frame.
    os.truncate(wal, wal.stat().st_size - (_FRAME_HEADER + page_size))
    reopen_and_check(copy, records[:-1])


def test_garbage_wal_tail_loses_only_the_last_commit(tmp_path: Path) -> None:
    copy, records, _ = crashed_copy(tmp_path)
    wal = copy / "journal.db-wal"
    size = wal.stat().st_size
    with open(wal, "r+b") as f:  # a torn write: the last bytes are not what was written
        f.seek(size - 100)
        f.write(bytes(range(100)))
    assert wal.stat().st_size == size
    reopen_and_check(copy, records[:-1])


def commit_frames(wal: Path, page_size: int) -> list[int]:
    """The indexes of the WAL's commit frames (a frame header's second word is the database
    size in pages for the last frame of a commit, 0 for the others)."""
    data = wal.read_bytes()
    out = []
    for i in range((len(data) - _WAL_HEADER) // (_FRAME_HEADER + page_size)):
        at = _WAL_HEADER + i * (_FRAME_HEADER + page_size)
        if int.from_bytes(data[at + 4 : at + 8], "big"):
            out.append(i)
    return out


def test_garbage_in_an_earlier_commit_drops_it_and_everything_after(tmp_path: Path) -> None:
    copy, records, page_size = crashed_copy(tmp_path)
    wal = copy / "journal.db-wal"
    commits = commit_frames(wal, page_size)
    # The last COMMITS commits are the appends (before them: creating the schema).
    assert len(commits) > COMMITS
    hit = 3  # a page of the fourth append, past the frame before its commit frame
    frame = commits[-COMMITS + hit - 1] + 1
    assert frame <= commits[-COMMITS + hit]
    with open(wal, "r+b") as f:
        f.seek(_WAL_HEADER + frame * (_FRAME_HEADER + page_size) + _FRAME_HEADER + 10)
        f.write(b"\xff" * 64)
    # The WAL is valid up to the frame before: the first three appends, whole.
    reopen_and_check(copy, records[:hit])
