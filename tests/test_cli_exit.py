"""Every command exits with its documented status, run after run: never a signal.

The embedded engine crashed processes at exit (status 139, a segmentation fault in its
background pool) when a thread was still in it: ``ingest`` of a file of duplicates ended
while the id filter it had started still streamed every stored id. A server stopped by
SIGTERM died by the signal (143) before it closed the store. Each command runs here as its
own process, ``SESSIONSCOPE_CLI_REPEAT`` times (2 in ``make test``, the management commands
once; more in ``make reliability``), on one data directory that grows as they run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXE, free_port
from tests.factories import BASE, minutes, player
from tests.reliability.record import record

pytestmark = pytest.mark.e2e

RUNS: list[int] = []  # every command's exit status, for the report
REPEAT = int(os.environ.get("SESSIONSCOPE_CLI_REPEAT", "2"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    env["SESSIONSCOPE_SECRET_KEY"] = "cli-exit-secret"
    return env


def run(data_dir: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*EXE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(),
    )
    RUNS.append(out.returncode)
    assert out.returncode == expect, (
        f"sessionscope {' '.join(args)}: status {out.returncode} (expected {expect})"
        f"{' = killed by signal ' + str(-out.returncode) if out.returncode < 0 else ''}\n"
        f"{out.stderr[-3000:]}"
    )
    return out


def serve_and_stop(data_dir: Path, sig: signal.Signals, api_key: str) -> int:
    """``serve``, a read and a write, then ``sig``: return the exit status."""
    port = free_port()
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            [*EXE, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {api_key}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "the server exited before it was healthy"
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not become healthy"
                time.sleep(0.1)
            sent = [
                player("playing", at=BASE + minutes(i), session=f"sig-{sig.name}") for i in range(3)
            ]
            posted = httpx.post(f"{base}/api/v1/events", json=sent, headers=auth, timeout=30)
            assert posted.status_code in (200, 202), posted.text
            listed = httpx.get(f"{base}/api/v1/sessions?kind=player", headers=auth, timeout=30)
            assert listed.status_code == 200, listed.text
            proc.send_signal(sig)
            status = proc.wait(timeout=60)
            RUNS.append(status)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output.seek(0)
        log = output.read().decode(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    return status


def test_every_command_exits_with_its_status_every_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(
            json.dumps(player("playing", at=BASE + minutes(i), session=f"cli-{i % 7}"))
            for i in range(300)
        )
        + "\n"
    )
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"kind": "player"}\nnot json\n')

    run(data, "migrate")
    run(data, "projects", "create", "exit")
    api_key = json.loads(run(data, "keys", "create", "-p", "exit", "--json").stdout)["api_key"]
    # Enough stored ids that the id filter is still loading when a short command ends.
    run(data, "simulate", "-p", "exit", "--days", "0.5", "--players", "300", "--json")
    for round_ in range(REPEAT):
        # The commands that only manage projects and keys: every round of a long run, the
        # first of a short one (``make test``); the rest every round.
        if round_ == 0 or REPEAT > 2:
            run(data, "migrate")
            run(data, "projects", "create", "exit", expect=1)  # already exists
            run(data, "projects", "create", f"exit-{round_}", "--json")
            run(data, "projects", "list", "--json")
            run(data, "projects", "set", "exit", "--idle-timeout", "10m", "--json")
            run(data, "projects", "set", "exit", "--idle-timeout", "soon", expect=2)
            run(data, "keys", "create", "-p", "exit", "--ncp", "--json")
            run(data, "keys", "list", "-p", "exit", "--json")
        run(data, "keys", "create", "-p", "exit", "--json")
        run(data, "users", "create", f"exit{round_}@example.com", "-p", "exit", "--json")
        first = json.loads(run(data, "ingest", str(events), "-p", "exit", "--json").stdout)
        assert first["accepted"] + first["duplicates"] == 300
        # Every event a duplicate: the command that crashed 8 times in 10.
        again = json.loads(run(data, "ingest", str(events), "-p", "exit", "--json").stdout)
        assert again == {"events": 300, "accepted": 0, "duplicates": 300}
        run(data, "ingest", str(events), "-p", "exit")
        run(data, "ingest", str(bad), "-p", "exit", expect=1)
        run(data, "sessions", "-p", "exit", "--json")
        run(data, "sessions", "-p", "exit", "--kind", "desktop")
        run(data, "sessions", "-p", "nope", expect=1)
        run(data, "simulate", "-p", "exit", "--days", "0.2", "--players", "20", "--json")
        for sig in (signal.SIGTERM, signal.SIGINT):
            assert serve_and_stop(data, sig, api_key) == 0, f"serve stopped by {sig.name}"
    # What the servers acknowledged is stored, and the store opens cleanly after them.
    out = run(
        data, "sessions", "-p", "exit", "--from", "2025-10-01", "--to", "2025-10-11", "--json"
    )
    events = {s["session"]: s["events"] for s in json.loads(out.stdout)["sessions"]}
    stored = events.get("sig-SIGTERM", 0) + events.get("sig-SIGINT", 0)
    # Each round acknowledged the same 3 events per signal (the same ids: stored once).
    record(
        "cli",
        runs=len(RUNS),
        repeat=REPEAT,
        signals=sum(1 for s in RUNS if s < 0 or s >= 128),
        acked_before_a_stop=6,
        lost=6 - stored,
    )
    assert stored == 6, events
