"""End to end: the real `sessionscope` command, the server as its own process, a restart.

The server runs in a child process with its own data directory (chDB allows one engine per
process, and this test's process already has one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.factories import BASE, desktop, minutes, player

pytestmark = pytest.mark.e2e

EXE = [sys.executable, "-m", "sessionscope"]


def run(data_dir: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [*EXE, *args, "--data-dir", str(data_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@contextmanager
def server(data_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    proc = subprocess.Popen(
        [*EXE, "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                assert proc.stdout is not None
                raise AssertionError(f"server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become healthy in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_ingest_query_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    project = run(data, "projects", "create", "e2e")
    key = run(data, "keys", "create", "--project", "e2e")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    batch = [
        player("player_start", session="e2e-1", duration_ms=5),
        player("startup", session="e2e-1", duration_ms=352),
        player("playing", at=BASE + minutes(1), session="e2e-1", duration_ms=60000),
        desktop("login", session=42),
        desktop("logout", at=BASE + minutes(30), session=42),
    ]
    with server(data) as base:
        r = httpx.post(f"{base}/api/v1/events", json=batch, headers=auth, timeout=30)
        assert r.json() == {"accepted": 5, "duplicates": 0}
        body = httpx.get(f"{base}/api/v1/sessions?kind=player", headers=auth).json()
        assert body["sessions"][0]["total_start_ms"] == 357
    # Acknowledged events survive a restart, and a retry after it is still deduplicated.
    with server(data) as base:
        body = httpx.get(f"{base}/api/v1/sessions/desktop/42", headers=auth).json()
        assert body["duration_ms"] == 30 * 60_000
        r = httpx.post(f"{base}/api/v1/events", json=batch, headers=auth, timeout=30)
        assert r.json() == {"accepted": 0, "duplicates": 5}
    listed = run(data, "projects", "list")
    assert isinstance(listed, list) and listed[0]["id"] == project["id"]
