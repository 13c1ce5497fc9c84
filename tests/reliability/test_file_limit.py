"""A real server process whose disk stops taking its writes (a file-size limit set on the
running process, as ``LimitFSIZE=`` in a systemd unit or a quota would): ingest is refused with a
clear 503, the server stays up, nothing acknowledged is lost, and it takes the same batch once
the writes go through again. (A full disk proper is tested in ``tests/ingest/test_refusals.py``
through SQLite's own limit.)"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import httpx

from tests.conftest import cli_json, serve_process
from tests.factories import BASE, minutes, player


def _server_pid(data_dir: Path) -> int:
    return int(json.loads((data_dir / "server.json").read_text())["pid"])


def test_writes_refused_by_the_disk_answer_503_and_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli_json(data, "projects", "create", "limited")
    key = cli_json(data, "keys", "create", "--project", "limited")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    first = [player(id=f"fl-a-{i}", session="fl-a", at=BASE + minutes(i)) for i in range(5)]
    big = [player(id=f"fl-b-{i}", session="fl-b", at=BASE + minutes(i)) for i in range(3_000)]
    with serve_process(data) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/api/v1/events", json=first, headers=auth).json()["accepted"] == 5
        pid = _server_pid(data)
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        # No file of the server may grow past 64 KiB: the big batch's journal record cannot
        # be written (nor, for a while, the store's parts or the log).
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (64 * 1024, hard))
        try:
            refused = http.post("/api/v1/events", json=big, headers=auth)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            error = refused.json()["error"]
            assert error["code"] in ("disk_full", "journal_error"), error
            assert "journal" in error["message"] or "disk" in error["message"]
            assert http.get("/healthz").status_code == 200  # still serving
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        # Nothing of the refused batch was kept: sent again, all of it is new.
        again = http.post("/api/v1/events", json=big, headers=auth)
        assert again.json() == {"accepted": 3_000, "duplicates": 0}, again.text
        # A read waits for the loader (which retries what the limit refused it meanwhile).
        deadline = time.monotonic() + 120
        while True:
            r = http.get("/api/v1/sessions", params={"kind": "player"}, headers=auth)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(1)
        counts = {s["session"]: s["events"] for s in r.json()["sessions"]}
        assert counts == {"fl-a": 5, "fl-b": 3_000}, counts
