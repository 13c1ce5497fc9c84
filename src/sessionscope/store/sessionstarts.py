"""When each stored session of a project started, so that an insert knows which of its
sessions it may start.

The session index (``schema.SESSION_INDEX``) finds a page of the newest (or oldest) sessions by
reading rows in time order: one at the first event time of each session an insert touches.
Events arrive as they happen, so a session of ten minutes reaches the store in many inserts,
and each of them would add a row for it: the index would grow with the inserts rather than
with the sessions, and a page would read ever deeper into it. Only a row at a session's true
start is needed, though, and an insert can hold that start only when the session is new, or
when the insert's earliest event of it is earlier than the session's known start (events sent
late). When this process is the only writer of the store (the embedded engine), it can know
every stored session's start: this structure remembers it, and the writer marks the other
sessions' rows so the index leaves them out (``events.starts = 0``).

The answer errs only one way. A session is "known" by two independent 64-bit hashes of its
kind and key; when neither the hashes nor a start is known (not loaded yet, a hash shared by
two sessions), the insert may hold the start, and the index gets its row as before. A start
is remembered only once its insert succeeded. Memory is 24 bytes per session (sorted numpy
arrays) plus a dictionary of the sessions written since the arrays were last rebuilt, up to
``capacity`` sessions: past it the sessions that started first are forgotten (they are then
"unknown", so an insert of one of them writes a start row again).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_CAPACITY", "KEY_SEPARATOR", "SessionStarts", "session_key"]

_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]
_UNKNOWN = np.iinfo(np.int64).max


#: Sessions remembered per project at most (24 MB): memory stays bounded as the store grows.
DEFAULT_CAPACITY = 1_000_000

#: Between a session's kind and its key in ``session_key`` (kinds may share session keys).
KEY_SEPARATOR = "\x1f"


def session_key(kind: str, session: str) -> str:
    """The key of a session of any kind."""
    return f"{kind}{KEY_SEPARATOR}{session}"


def _hashes(keys: Sequence[str]) -> tuple[_U64, _U64]:
    """Two independent 64-bit hashes of each key (Python's keyed string hash of the key, and
    of the key with a suffix; stable within this process only)."""
    n = len(keys)
    first = np.fromiter(map(hash, keys), dtype=np.int64, count=n).view(np.uint64)
    second = np.fromiter((hash(k + "\x00") for k in keys), dtype=np.int64, count=n)
    return first, second.view(np.uint64)


class SessionStarts:
    """The start (epoch ms) of each stored session of one project; safe to share."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        #: The most sessions remembered: past it the earliest-started are forgotten.
        self.capacity = capacity
        self._lock = threading.Lock()
        self._first: _U64 = np.empty(0, dtype=np.uint64)
        self._second: _U64 = np.empty(0, dtype=np.uint64)
        self._start: _I64 = np.empty(0, dtype=np.int64)
        #: Sessions written since the arrays were built: (hash, hash) -> least start.
        self._recent: dict[tuple[int, int], int] = {}
        self.ready = False

    def may_start(self, keys: Sequence[str], earliest_ms: Sequence[int]) -> list[bool]:
        """For each session (``session_key``) and the earliest time an insert holds of it:
        True unless the session is known to start at or before that time."""
        if not self.ready:
            return [True] * len(keys)
        known = self._known(keys)
        return [bool(t < k) for t, k in zip(earliest_ms, known.tolist(), strict=True)]

    def record(self, keys: Sequence[str], earliest_ms: Sequence[int]) -> None:
        """Remember sessions stored with their earliest times (the least start is kept)."""
        if not keys:
            return
        first, second = _hashes(keys)
        with self._lock:
            recent = self._recent
            for a, b, t in zip(first.tolist(), second.tolist(), earliest_ms, strict=True):
                old = recent.get((a, b))
                if old is None or t < old:
                    recent[(a, b)] = int(t)
            if len(recent) > max(65_536, len(self._first) // 2):
                self._rebuild()

    def load(self, blocks: Iterable[tuple[Sequence[str], Sequence[int]]]) -> None:
        """Remember every stored session (in blocks of keys and starts), then answer.

        Each block is hashed into arrays straight away (no dictionary of every session: the
        load of a large store would hold one entry object per session at once)."""
        firsts: list[_U64] = []
        seconds: list[_U64] = []
        starts: list[_I64] = []
        for keys, block_starts in blocks:
            first, second = _hashes(keys)
            firsts.append(first)
            seconds.append(second)
            starts.append(np.asarray(block_starts, dtype=np.int64))
        with self._lock:
            if firsts:
                self._merge(np.concatenate(firsts), np.concatenate(seconds), np.concatenate(starts))
            self._rebuild()
        self.ready = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._first) + len(self._recent)

    def _known(self, keys: Sequence[str]) -> _I64:
        first, second = _hashes(keys)
        with self._lock:
            base_first, base_second, base_start = self._first, self._second, self._start
            pairs = zip(first.tolist(), second.tolist(), strict=True)
            recent = [self._recent.get(k) for k in pairs]
        known = np.full(len(keys), _UNKNOWN, dtype=np.int64)
        if len(base_first):
            at = np.searchsorted(base_first, first)
            np.minimum(at, len(base_first) - 1, out=at)
            # A first hash shared by two sessions finds one of them: the other is unknown.
            hit = (base_first[at] == first) & (base_second[at] == second)
            known = np.where(hit, base_start[at], known)
        for i, t in enumerate(recent):
            if t is not None and t < known[i]:
                known[i] = t
        return known

    def _rebuild(self) -> None:
        """Fold the recent sessions into the sorted arrays (the lock is held)."""
        if not self._recent:
            return
        pairs = np.array(list(self._recent), dtype=np.uint64).reshape(-1, 2)
        starts = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        self._recent = {}
        self._merge(pairs[:, 0], pairs[:, 1], starts)

    def _merge(self, first: _U64, second: _U64, start: _I64) -> None:
        """Fold sessions into the sorted arrays, keeping each one's least start and at most
        ``capacity`` sessions (the lock is held)."""
        first = np.concatenate((self._first, first))
        second = np.concatenate((self._second, second))
        start = np.concatenate((self._start, start))
        order = np.lexsort((start, second, first))  # by first, second, then least start
        first, second, start = first[order], second[order], start[order]
        keep = np.ones(len(first), dtype=bool)
        keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
        first, second, start = first[keep], second[keep], start[keep]
        if len(start) > self.capacity:
            # Forget the sessions that started first (a session that old rarely gets events;
            # if it does, its block only writes one more index row).
            cut = np.partition(start, len(start) - self.capacity)[len(start) - self.capacity]
            newer = start >= cut
            first, second, start = first[newer], second[newer], start[newer]
        self._first, self._second, self._start = first, second, start
