"""What ingest answers when it cannot take a batch: a full disk and a full journal, over HTTP,
in each API family's error shape, with nothing of the refused batch stored."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from sessionscope.app import create_app
from sessionscope.config import Settings
from sessionscope.ingest import Ingestor, IngestTuning
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import Tenant, free_port
from tests.factories import BASE, minutes, player


@pytest.fixture
def private(
    settings: Settings, store: ClickHouseStore, tmp_path: Path
) -> Iterator[tuple[str, Ingestor]]:
    """The app on the shared store with its own journal (a long linger: the loader waits)."""
    ingestor = Ingestor(
        store, tmp_path / "journal", IngestTuning(max_pending_events=1_000, linger_s=60)
    ).start()
    app = create_app(dataclasses.replace(settings), store=store, ingestor=ingestor)
    server = uvicorn.Server(uvicorn.Config(app, port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}", ingestor
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ingestor.close()


def test_a_full_disk_is_refused_clearly_and_stores_nothing(
    private: tuple[str, Ingestor], tenant: Tenant, store: ClickHouseStore
) -> None:
    url, ingestor = private
    with httpx.Client(base_url=url, timeout=30) as http:
        ok = [player(session="disk", at=BASE + minutes(i)) for i in range(3)]
        assert http.post("/api/v1/events", json=ok, headers=tenant.auth).status_code == 200
        # SQLite's page limit fails a write exactly as a full disk does (SQLITE_FULL).
        pages = ingestor.journal._appender.execute("PRAGMA page_count").fetchone()[0]
        ingestor.journal._appender.execute(f"PRAGMA max_page_count = {pages}")
        big = [player(session="disk-big", at=BASE + minutes(i)) for i in range(200)]
        r = http.post("/api/v1/events", json=big, headers=tenant.auth)
        assert r.status_code == 503
        assert r.headers["retry-after"].isdigit()
        error = r.json()["error"]
        assert error["code"] == "disk_full" and "disk is full" in error["message"]
        ingestor.journal._appender.execute("PRAGMA max_page_count = 1073741823")
        # The refused batch is not journaled: resent once there is room, it is all new.
        r = http.post("/api/v1/events", json=big, headers=tenant.auth)
        assert r.json() == {"accepted": 200, "duplicates": 0}
        assert (
            http.get("/api/v1/sessions", params={"kind": "player"}, headers=tenant.auth).status_code
            == 200
        )  # a read waits for the loader: everything is stored
    assert store.count_events(tenant.project.id) == 203


def test_a_full_journal_answers_503_with_retry_after_in_each_family_shape(
    private: tuple[str, Ingestor], tenant: Tenant, store: ClickHouseStore
) -> None:
    url, ingestor = private
    with httpx.Client(base_url=url, timeout=30) as http:
        first = [player(session="full", at=BASE + minutes(i)) for i in range(900)]
        assert http.post("/api/v1/events", json=first, headers=tenant.auth).json() == {
            "accepted": 900,
            "duplicates": 0,
        }
        more = [player(session="full-2", at=BASE + minutes(i)) for i in range(200)]
        r = http.post("/api/v1/events", json=more, headers=tenant.auth)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "overloaded"
        # The Live Station receiver answers in NAVER's gateway shape.
        callback = {
            "id": 77001,
            "channelId": "ls-full",
            "event": "PUBLISH_START",
            "logLevel": "INFO",
            "timestamp": 1_760_000_000_000,
        }
        r = http.post(
            "/api/v2/callbacks/events",
            json=[callback] * 1 + [{**callback, "id": 77001 + n} for n in range(1, 150)],
            headers=tenant.auth,
        )
        assert r.status_code == 503 and "retry-after" in r.headers
        assert r.json()["error"]["errorCode"] == "900"
        assert ingestor.status()["pending_events"] == 900
        # A read makes the loader write at once; then the journal has room again.
        assert (
            http.get("/api/v1/sessions", params={"kind": "player"}, headers=tenant.auth).status_code
            == 200
        )
        assert ingestor.status()["pending_events"] == 0
        r = http.post("/api/v1/events", json=more, headers=tenant.auth)
        assert r.json() == {"accepted": 200, "duplicates": 0}
    assert ingestor.barrier()
    assert store.count_events(tenant.project.id) == 1100


def test_the_bound_follows_the_loaders_speed(store: ClickHouseStore, tmp_path: Path) -> None:
    """What may wait in the journal is at most ``max_lag_s`` of loading (so a read under a load
    the store cannot keep up with waits about that long), never under three blocks."""
    tuning = IngestTuning(max_pending_events=1_000_000, block_events=10_000, max_lag_s=5)
    ingestor = Ingestor(store, tmp_path / "journal", tuning)
    try:
        assert ingestor._bound() == 1_000_000  # no block loaded yet: the bound in events
        ingestor._load_rate = 30_000.0
        assert ingestor._bound() == 150_000  # 5 s at 30,000 events/s
        ingestor._load_rate = 1_000.0
        assert ingestor._bound() == 30_000  # three blocks at least
        # A burst of large bodies holds back two blocks at most, and leaves a block of room.
        assert ingestor._burst_most() == 20_000
        ingestor.tuning = IngestTuning(max_pending_events=25_000, block_events=10_000)
        assert ingestor._burst_most() == 15_000
        ingestor.tuning = tuning
        ingestor._load_rate = 1_000_000.0
        assert ingestor._bound() == 1_000_000  # and never past the bound in events
    finally:
        ingestor.journal.close()
