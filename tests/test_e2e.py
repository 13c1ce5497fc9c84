"""End to end: the real `sessionscope` command, the server as its own process, a restart.

The server runs in a child process with its own data directory (chDB allows one engine per
process, and this test's process already has one).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_json, serve_process
from tests.factories import BASE, desktop, minutes, player

pytestmark = pytest.mark.e2e


def test_serve_ingest_query_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    project = cli_json(data, "projects", "create", "e2e")
    key = cli_json(data, "keys", "create", "--project", "e2e")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    batch = [
        player("player_start", session="e2e-1", duration_ms=5),
        player("startup", session="e2e-1", duration_ms=352),
        player("playing", at=BASE + minutes(1), session="e2e-1", duration_ms=60000),
        desktop("login", session=42),
        desktop("logout", at=BASE + minutes(30), session=42),
    ]
    with serve_process(data) as base:
        r = httpx.post(f"{base}/api/v1/events", json=batch, headers=auth, timeout=30)
        assert r.json() == {"accepted": 5, "duplicates": 0}
        body = httpx.get(f"{base}/api/v1/sessions?kind=player", headers=auth).json()
        assert body["sessions"][0]["total_start_ms"] == 357
        # What start-up built is left out of garbage collection (``heap``).
        metrics = httpx.get(f"{base}/metrics").text.splitlines()
        (frozen,) = (m for m in metrics if m.startswith("sessionscope_python_frozen_objects"))
        assert float(frozen.split()[1]) > 10_000
        assert any(m.startswith("python_gc_collections_total") for m in metrics)
    # Acknowledged events survive a restart, and a retry after it is still deduplicated.
    with serve_process(data) as base:
        body = httpx.get(f"{base}/api/v1/sessions/desktop/42", headers=auth).json()
        assert body["duration_ms"] == 30 * 60_000
        r = httpx.post(f"{base}/api/v1/events", json=batch, headers=auth, timeout=30)
        assert r.json() == {"accepted": 0, "duplicates": 5}
    listed = cli_json(data, "projects", "list")
    assert isinstance(listed, list) and listed[0]["id"] == project["id"]
