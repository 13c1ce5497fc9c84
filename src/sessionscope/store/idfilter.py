"""Which event ids a project has surely not stored yet: a set of 64-bit id hashes.

Deduplication asks, for every incoming event, whether its ``(project, id)`` is already stored.
Asking the engine costs a query over the id index for every batch, which grows with the store.
When this process is the only writer of the store (the embedded engine locks its data
directory), it can remember what it wrote instead: the hashes of the stored ids answer "surely
new" for an id whose hash is absent, and only ids whose hash is present ("maybe stored": real
duplicates, and by chance about one id in 10^10 per million stored) are looked up in the
engine. The answer stays exact.

The set is filled from the store once (``load``) and then by the writer, which adds every id
before it inserts it: a failed insert only makes its ids "maybe stored", never "surely new".
It is kept as a few sorted runs of hashes (numpy arrays, merged like a log-structured tree:
a new run is merged into the last one while it is at least half its size), so a lookup is a
binary search per run and an addition is a merge of sorted arrays. Memory is 8 bytes per
stored id (8 MB per million events).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Hashes", "IdFilter", "id_hashes"]

Hashes = npt.NDArray[np.uint64]
Mask = npt.NDArray[np.bool_]


def id_hashes(ids: Sequence[str]) -> Hashes:
    """64-bit hashes of event ids (Python's string hash: stable within this process only)."""
    return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)).view(np.uint64)


class IdFilter:
    """The hashes of one project's stored event ids; safe to share between threads."""

    def __init__(self) -> None:
        self._runs: list[Hashes] = []
        self._lock = threading.Lock()
        self.ready = False

    def maybe_stored(self, hashes: Hashes) -> Mask:
        """True where an id may be stored; False where it surely is not."""
        with self._lock:
            runs = list(self._runs)
        # Searching in sorted order keeps consecutive searches on nearby memory.
        order = np.argsort(hashes)
        wanted = hashes[order]
        found = np.zeros(len(hashes), dtype=bool)
        for run in runs:
            at = np.searchsorted(run, wanted)
            np.minimum(at, len(run) - 1, out=at)
            found |= run[at] == wanted
        hit = np.empty_like(found)
        hit[order] = found
        return hit

    def add(self, hashes: Hashes) -> None:
        """Remember ids as (maybe) stored."""
        if len(hashes) == 0:
            return
        run = np.sort(hashes)
        with self._lock:
            runs = self._runs
            runs.append(run)
            while len(runs) > 1 and len(runs[-1]) * 2 >= len(runs[-2]):
                # Stable sort of two sorted runs is a linear merge (timsort finds the runs).
                merged = np.sort(np.concatenate((runs[-2], runs[-1])), kind="stable")
                runs[-2:] = [merged]

    def load(self, ids: Iterable[Sequence[str]]) -> None:
        """Add every stored id (in blocks), then mark the filter ready to answer."""
        for block in ids:
            self.add(id_hashes(block))
        self.ready = True

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(run.nbytes for run in self._runs)
