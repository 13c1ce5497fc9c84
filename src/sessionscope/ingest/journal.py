"""The ingest journal: acknowledged batches, durable on local disk until they are in the store.

One SQLite database in WAL mode (``<data dir>/journal/journal.db``, standard library) with
``synchronous = FULL``: a commit returns once its WAL frames are fsynced, and SQLite's own
checksummed WAL framing discards a torn or truncated tail at the next open, so a commit is
either whole after a crash or absent. Each acknowledged batch is one row of ``records``:
``seq`` (increasing and never reused: it names blocks), its project, its event count and its
events (see ``ingestor._encode``: Arrow columns or msgpack). The loader reads records in
``seq`` order, loads a range of them into the store as one block, then deletes them.

Before it inserts a block the loader records the block's range (``meta.block``), so that a
block cut short by a crash is retried after it as the very same records under the same
deduplication token (see :mod:`sessionscope.ingest.ingestor`).

A data directory has one journal, used by one process at a time (an ``flock`` on
``journal/LOCK``): a second process gets :class:`JournalBusy`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DiskFull", "Journal", "JournalBusy", "JournalError", "Record"]


class JournalError(Exception):
    """The journal could not be written or read."""


class JournalBusy(JournalError):
    """Another process holds this data directory's journal."""


class DiskFull(JournalError):
    """The journal's disk has no room for a batch."""


@dataclass(frozen=True, slots=True)
class Record:
    """One acknowledged batch: ``count`` events of one project, encoded in ``body``."""

    seq: int
    project_id: int
    count: int
    body: bytes


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "project_id INTEGER NOT NULL, count INTEGER NOT NULL, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


#: Rows of one ``INSERT`` (three parameters each, under SQLite's limit of 32,766).
_ROWS_PER_INSERT = 1000


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO records (project_id, count, body) VALUES " + ",".join(["(?, ?, ?)"] * rows)


def _is_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


class Journal:
    """The journal of one data directory; appends and loader operations are thread-safe."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / "journal.db"
        self._lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise JournalBusy(f"the journal in {directory} is in use by another process") from None
        try:
            # Appends (request threads, through the writer) and the loader each have their own
            # connection, so a long read of a block never holds up an acknowledgement.
            self._appender = self._connect()
            self._loader = self._connect()
            for sql in _SCHEMA:
                self._appender.execute(sql)
            self.id = self._meta(self._appender, "id") or self._new_id()
        except BaseException:
            self._release()
            raise
        #: Held by every write of the journal (appends, the loader's marks and deletions,
        #: checkpoints): a writer waits here rather than in SQLite's busy handler (which
        #: sleeps in steps of milliseconds), and an append that must not wait can see that
        #: it would (``try_append``).
        self._write_lock = threading.Lock()
        self._loader_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit waits for the WAL to be fsynced (durable at once, not at checkpoint).
        db.execute("PRAGMA synchronous = FULL")
        # Checkpoints are the loader's (``checkpoint``), never in the middle of an append.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        return db

    def _new_id(self) -> str:
        value = uuid.uuid4().hex
        self._appender.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", (value,))
        return self._meta(self._appender, "id") or value

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ appending

    def append(self, batches: Sequence[tuple[int, int, bytes]]) -> list[int]:
        """Append batches ``(project_id, count, body)`` in one commit (durable when this
        returns); return their sequence numbers.

        One statement, committed on its own: the interpreter lock is let go once around the
        whole append and its fsync, not once per statement (each time it is taken back the
        writer may wait for the event loop's thread, which holds it while it serves requests).
        Its rows get consecutive sequence numbers: one writer, ``AUTOINCREMENT``.
        """
        with self._write_lock:
            return self._append(batches)

    def try_append(self, batches: Sequence[tuple[int, int, bytes]]) -> list[int] | None:
        """``append``, or None at once (nothing written) while another write of the journal is
        under way: for a caller that must not wait (the event loop's own commits)."""
        if not self._write_lock.acquire(blocking=False):
            return None
        try:
            return self._append(batches)
        finally:
            self._write_lock.release()

    def _append(self, batches: Sequence[tuple[int, int, bytes]]) -> list[int]:
        chunks = [
            batches[at : at + _ROWS_PER_INSERT] for at in range(0, len(batches), _ROWS_PER_INSERT)
        ]
        many = len(chunks) > 1  # then in one transaction, a statement per chunk
        db = self._appender
        try:
            if many:
                db.execute("BEGIN IMMEDIATE")
            for chunk in chunks:
                cur = db.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
            if many:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if _is_full(exc):
                raise DiskFull("the data directory's disk is full") from None
            raise JournalError(f"could not write the ingest journal: {exc}") from None
        last = int(cur.lastrowid or 0)
        return list(range(last - len(batches) + 1, last + 1))

    # ------------------------------------------------------------------ the loader's side

    def pending(self) -> tuple[int, int, int]:
        """``(records, events, last seq)`` still in the journal."""
        with self._loader_lock:
            row = self._loader.execute(
                "SELECT count(*), coalesce(sum(count), 0), coalesce(max(seq), 0) FROM records"
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def read(self, after: int, max_events: int, upto: int | None = None) -> list[Record]:
        """The records after ``after`` (and up to ``upto``) in order, up to about
        ``max_events`` events (at least one record when any)."""
        out: list[Record] = []
        total = 0
        with self._loader_lock:
            cur = self._loader.execute(
                "SELECT seq, project_id, count, body FROM records WHERE seq > ? AND seq <= ? "
                "ORDER BY seq",
                (after, (1 << 62) if upto is None else upto),
            )
            try:
                for seq, project_id, count, body in cur:
                    if out and total + count > max_events:
                        break
                    out.append(Record(int(seq), int(project_id), int(count), bytes(body)))
                    total += count
            finally:
                cur.close()
        return out

    def read_range(self, first: int, last: int) -> list[Record]:
        """The records from ``first`` to ``last`` (a block recorded by ``begin_block``)."""
        with self._loader_lock:
            rows = self._loader.execute(
                "SELECT seq, project_id, count, body FROM records WHERE seq BETWEEN ? AND ? "
                "ORDER BY seq",
                (first, last),
            ).fetchall()
        return [Record(int(s), int(p), int(c), bytes(b)) for s, p, c, b in rows]

    def block(self) -> tuple[int, int] | None:
        """The block being loaded when the journal was last used, if it did not finish."""
        with self._loader_lock:
            value = self._meta(self._loader, "block")
        if not value:
            return None
        first, last = value.split()
        return int(first), int(last)

    def begin_block(self, first: int, last: int) -> None:
        """Record (durably) that the records ``first..last`` are being loaded as one block."""
        self._loader_write(
            ("INSERT OR REPLACE INTO meta VALUES ('block', ?)", (f"{first} {last}",)),
        )

    def end_block(self, last: int) -> None:
        """The block up to ``last`` is in the store: drop its records and the block mark."""
        self._loader_write(
            ("DELETE FROM records WHERE seq <= ?", (last,)),
            ("DELETE FROM meta WHERE key = 'block'", ()),
        )

    def _loader_write(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        with self._loader_lock, self._write_lock:
            db = self._loader
            try:
                db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    db.execute(sql, params)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise JournalError(f"could not update the ingest journal: {exc}") from None

    def checkpoint(self) -> None:
        """Copy the WAL into the database and restart it (keeps the WAL file small)."""
        with self._loader_lock, self._write_lock, contextlib.suppress(sqlite3.Error):
            self._loader.execute("PRAGMA wal_checkpoint(RESTART)")

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        for db in (self._appender, self._loader):
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
