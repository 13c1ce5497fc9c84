"""``close`` leaves no thread in the engine: the background loads of the id filter and of the
session starts are stopped and joined first.

A thread still streaming from the embedded engine when the process exits crashed it (a
segmentation fault in the engine's background pool, status 139): e.g. ``sessionscope ingest``
of a file of duplicates ends while the id filter it started still loads every stored id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import pytest

from sessionscope.config import Settings
from sessionscope.store.clickhouse import ClickHouseStore, open_store
from sessionscope.store.idfilter import IdFilter
from sessionscope.store.sessionstarts import SessionStarts


def _loader_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name == "id-filter" or t.name.startswith("session-starts-")
    ]


@pytest.fixture
def own_store(settings: Settings, store: ClickHouseStore) -> Iterator[ClickHouseStore]:
    """A second store object on the test run's engine: closing it closes only its own
    connections."""
    st = open_store(settings, migrate=False)
    yield st
    st.close()


def test_close_stops_and_joins_the_background_loads(
    own_store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = own_store
    started = threading.Event()
    release = threading.Event()
    filter_load = IdFilter.load
    starts_load = SessionStarts.load

    def slow(original):  # type: ignore[no-untyped-def]
        def load(self, blocks: Iterable[tuple[Sequence[object], Sequence[object]]]) -> None:  # type: ignore[no-untyped-def]
            started.set()
            release.wait(10)  # until close() has begun: it then stops at the first block
            original(self, blocks)

        return load

    monkeypatch.setattr(IdFilter, "load", slow(filter_load))
    monkeypatch.setattr(SessionStarts, "load", slow(starts_load))
    assert store.exclusive
    store.id_filter()
    store._session_starts(1)
    assert started.wait(10)
    assert _loader_threads()

    closing = threading.Thread(target=store.close)
    closing.start()
    assert store._closing.wait(10)
    release.set()
    closing.join(30)
    assert not closing.is_alive()
    assert not _loader_threads(), "a background load outlived close()"
    # Cut short, so not used: made again (and completed) at the next use.
    assert store._id_filter is None and store._starts == {}

    monkeypatch.setattr(IdFilter, "load", filter_load)
    monkeypatch.setattr(SessionStarts, "load", starts_load)
    known = store.id_filter()
    assert known is not None
    for thread in _loader_threads():
        thread.join(30)
    assert known.ready
    assert store.query("SELECT 1") == [(1,)]  # the store connects again after close()
