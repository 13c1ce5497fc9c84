"""Session pages over many sessions: the bounded page query gives exactly the full query's page.

``session_rows`` narrows a page to the sessions with a row past a bound once a project has many
rows (``bounded_page_min_rows``). These tests set that threshold to zero and use small pages, so
the bounded path runs on a small project, and check every page against the whole ordered list.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.factories import BASE, desktop, endpoint, player

from sessionscope.domain.events import validate_batch
from sessionscope.store.clickhouse import ClickHouseStore


@pytest.fixture(autouse=True)
def always_bounded(store: ClickHouseStore) -> Iterator[None]:
    saved = store.bounded_page_min_rows
    store.bounded_page_min_rows = 0
    try:
        yield
    finally:
        store.bounded_page_min_rows = saved


@pytest.fixture(scope="module")
def many(store: ClickHouseStore) -> int:
    """A project of 120 player sessions; some start together, some are sent in two parts."""
    project = store.create_project(f"bounded-{datetime.now(UTC).timestamp()}")
    raw: list[dict[str, Any]] = []
    for n in range(120):
        at = BASE + timedelta(minutes=(n // 3) * 7)  # three sessions share each start
        device = "Mobile" if n % 4 == 0 else "PC"
        for k in range(3):
            raw.append(
                player(
                    "playing",
                    at=at + timedelta(minutes=k * (n % 11)),
                    session=f"b-{n:03d}",
                    id=f"b-{n}-{k}",
                    device=device,
                    duration_ms=1000,
                )
            )
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    # Two inserts: a session's rows are split over two parts of the aggregate.
    store.insert_events(project.id, [e for e in events if e.id.endswith("-2")])
    store.insert_events(project.id, [e for e in events if not e.id.endswith("-2")])
    return project.id


def keys(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["session"]) for r in rows]


def walk(store: ClickHouseStore, project_id: int, limit: int, **kw: Any) -> list[str]:
    """Every session through keyset pages of ``limit``."""
    order_by = kw.get("order_by", "start")
    out: list[str] = []
    before = None
    while True:
        rows = store.session_rows("player", project_id, before=before, limit=limit, **kw)
        out += keys(rows)
        if len(rows) < limit:
            return out
        before = (rows[-1][order_by], str(rows[-1]["session"]))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"oldest_first": True},
        {"order_by": "end"},
        {"order_by": "end", "oldest_first": True},
        {"filters": {"device": ["Mobile"]}},
        {"start": BASE + timedelta(hours=1), "end": BASE + timedelta(hours=3)},
        {
            "start": BASE + timedelta(hours=1),
            "end": BASE + timedelta(hours=3),
            "ended_within": True,
            "order_by": "end",
        },
        {"start": BASE + timedelta(hours=2), "started_within": True, "oldest_first": True},
    ],
)
def test_pages_match_the_full_list(store: ClickHouseStore, many: int, kw: dict[str, Any]) -> None:
    full = keys(store.session_rows("player", many, limit=None, **kw))
    assert full, "the case selects some sessions"
    for limit in (1, 2, 5):
        assert keys(store.session_rows("player", many, limit=limit, **kw)) == full[:limit]
    assert walk(store, many, 2, **kw) == full


@pytest.mark.parametrize("kind", ["desktop", "endpoint"])
@pytest.mark.parametrize("kw", [{}, {"oldest_first": True}, {"order_by": "end"}])
def test_other_kinds_page_through_the_index(
    store: ClickHouseStore, kind: str, kw: dict[str, Any]
) -> None:
    project = store.create_project(f"bounded-{kind}-{datetime.now(UTC).timestamp()}")
    raw: list[dict[str, Any]] = []
    for n in range(30):
        at = BASE + timedelta(minutes=(n // 2) * 5)
        for k in range(2):
            when = at + timedelta(minutes=k * (n % 7))
            if kind == "desktop":
                raw.append(desktop("activity", at=when, session=1000 + n, id=f"d-{n}-{k}"))
            else:
                raw.append(endpoint(at=when, session=f"e-{n:02d}", page_id=f"p{k}", id=f"e{n}-{k}"))
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems
    store.insert_events(project.id, [e for e in events if e.id.endswith("-1")])
    store.insert_events(project.id, [e for e in events if not e.id.endswith("-1")])
    full = keys(store.session_rows(kind, project.id, limit=None, **kw))
    assert len(full) == 30
    order_by = kw.get("order_by", "start")
    for limit in (1, 3):
        assert keys(store.session_rows(kind, project.id, limit=limit, **kw)) == full[:limit]
        seen: list[str] = []
        before = None
        while True:
            rows = store.session_rows(kind, project.id, before=before, limit=limit, **kw)
            seen += keys(rows)
            if len(rows) < limit:
                break
            before = (rows[-1][order_by], str(rows[-1]["session"]))
        assert seen == full
