from __future__ import annotations

import httpx

from tests.conftest import Tenant


def test_healthz(http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_ingest_and_list(http: httpx.Client, tenant: Tenant) -> None:
    event = {
        "kind": "player",
        "time": "2025-10-10T09:49:46Z",
        "type": "startup",
        "duration_ms": 352,
        "session": "s1",
        "user": "ad5aea06-fb78-41c7-b2ad-716b685e32db",
        "device": "PC",
        "video_type": "VOD",
    }
    r = http.post("/api/v1/events", json=event, headers=tenant.auth)
    assert r.json() == {"accepted": 1, "duplicates": 0}
    r = http.get("/api/v1/sessions", params={"kind": "player"}, headers=tenant.auth)
    assert [s["session"] for s in r.json()["sessions"]] == ["s1"]
