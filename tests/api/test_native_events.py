"""POST /api/v1/events through the real app over HTTP."""

from __future__ import annotations

import dataclasses
import gzip
import threading
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn

from sessionscope.app import create_app
from sessionscope.config import Settings
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import Tenant, free_port
from tests.factories import BASE, channel, desktop, endpoint, minutes, player


def post(http: httpx.Client, tenant: Tenant, body: object) -> httpx.Response:
    return http.post("/api/v1/events", json=body, headers=tenant.auth)


def test_accepts_array_object_and_ndjson(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    r = post(http, tenant, [player("startup", session="a"), player("playing", session="a")])
    assert (r.status_code, r.json()) == (200, {"accepted": 2, "duplicates": 0})
    r = post(http, tenant, channel())
    assert r.json() == {"accepted": 1, "duplicates": 0}
    ndjson = b"\n".join(orjson.dumps(e) for e in [desktop("login"), endpoint()]) + b"\n"
    r = http.post(
        "/api/v1/events",
        content=ndjson,
        headers={**tenant.auth, "Content-Type": "application/x-ndjson"},
    )
    assert r.json() == {"accepted": 2, "duplicates": 0}
    assert loaded_store.count_events(tenant.project.id) == 5


def test_gzip_body(http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore) -> None:
    body = gzip.compress(
        orjson.dumps([player(session="gz", at=BASE + minutes(i)) for i in range(50)])
    )
    r = http.post(
        "/api/v1/events",
        content=body,
        headers={**tenant.auth, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.json() == {"accepted": 50, "duplicates": 0}
    assert loaded_store.count_events(tenant.project.id, "player") == 50


def test_resent_batch_is_not_duplicated(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    batch = [player("startup", session="r", duration_ms=300), player("playing", session="r")]
    assert post(http, tenant, batch).json() == {"accepted": 2, "duplicates": 0}
    assert post(http, tenant, batch).json() == {"accepted": 0, "duplicates": 2}
    # Same id with new content still counts as a duplicate of the stored event.
    again = [{**batch[0], "id": "x1", "session": "r2"}, {**batch[1], "id": "x1", "session": "r2"}]
    assert post(http, tenant, again).json() == {
        "accepted": 1,
        "duplicates": 1,
    }
    assert loaded_store.count_events(tenant.project.id) == 3
    s = http.get("/api/v1/sessions/player/r", headers=tenant.auth).json()
    assert s["video_start_ms"] == 300


def test_concurrent_retries_store_once(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore, base_url: str
) -> None:
    batch = [player(session=f"c{i}", at=BASE + minutes(i)) for i in range(200)]
    results: list[dict[str, int]] = []

    def send() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            results.append(client.post("/api/v1/events", json=batch, headers=tenant.auth).json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 600
    assert loaded_store.count_events(tenant.project.id) == 200


def test_invalid_batch_lists_every_problem_and_stores_nothing(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    batch = [
        player(),
        player(user="not-a-uuid"),
        desktop(session=0),
        endpoint(port=70000),
        {"kind": "robot", "time": "2025-10-10T09:00:00Z", "type": "x"},
        channel(time="yesterday"),
    ]
    r = post(http, tenant, batch)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_events"
    assert [(p["index"], p["field"]) for p in error["problems"]] == [
        (1, "user"),
        (2, "session"),
        (3, "port"),
        (4, "kind"),
        (5, "time"),
    ]
    assert all(p["message"] for p in error["problems"])
    assert loaded_store.count_events(tenant.project.id) == 0


def test_every_problem_of_one_event_is_listed(http: httpx.Client, tenant: Tenant) -> None:
    r = post(http, tenant, [player(type="jumping", duration_ms=-5, user="someone")])
    assert r.status_code == 400
    fields = sorted(p["field"] for p in r.json()["error"]["problems"])
    assert fields == ["duration_ms", "type", "user"]


@pytest.mark.parametrize(
    ("body", "ctype", "code"),
    [
        (b"{not json", "application/json", "invalid_json"),
        (b"[]", "application/json", "empty_batch"),
        (b"42", "application/json", "invalid_json"),
        (b'{"kind":"player"}\n{oops', "application/x-ndjson", "invalid_json"),
    ],
)
def test_malformed_bodies(
    http: httpx.Client, tenant: Tenant, body: bytes, ctype: str, code: str
) -> None:
    r = http.post("/api/v1/events", content=body, headers={**tenant.auth, "Content-Type": ctype})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == code


def test_bad_gzip_is_400(http: httpx.Client, tenant: Tenant) -> None:
    r = http.post(
        "/api/v1/events",
        content=b"definitely not gzip",
        headers={**tenant.auth, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_gzip"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}],
)
def test_needs_a_valid_key(http: httpx.Client, headers: dict[str, str]) -> None:
    r = http.post("/api/v1/events", json=player(), headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


@pytest.fixture
def small_server(settings: Settings, store: ClickHouseStore, ingestor: Ingestor) -> Iterator[str]:
    """The app with a 2 KB body limit, on its own port, sharing the store."""
    port = free_port()
    app = create_app(
        dataclasses.replace(settings, max_body_bytes=2048), store=store, ingestor=ingestor
    )
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_body_over_limit_is_413(
    small_server: str, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    big = [player(session="big", at=BASE + minutes(i)) for i in range(40)]
    with httpx.Client(base_url=small_server, timeout=30) as client:
        r = client.post("/api/v1/events", json=big, headers=tenant.auth)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        # Compressed small, decoded too large: still refused.
        r = client.post(
            "/api/v1/events",
            content=gzip.compress(orjson.dumps(big)),
            headers={**tenant.auth, "Content-Encoding": "gzip"},
        )
        assert r.status_code == 413
        r = client.post("/api/v1/events", json=big[:2], headers=tenant.auth)
        assert r.status_code == 200
    assert loaded_store.count_events(tenant.project.id) == 2


def test_events_without_id_get_a_deterministic_one(http: httpx.Client, tenant: Tenant) -> None:
    post(http, tenant, [player("startup", session="d"), player("playing", session="d")])
    first = http.get("/api/v1/sessions/player/d", headers=tenant.auth).json()["events"]
    assert all(e["id"].startswith("d-") for e in first)
    assert post(http, tenant, [player("startup", session="d")]).json()["duplicates"] == 1
