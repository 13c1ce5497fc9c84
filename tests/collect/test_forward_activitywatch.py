"""The ActivityWatch forwarder against a real aw-server (from PyPI, started with ``--testing``),
fed through the real ``aw-client`` package; the forwarded sessions read back through Ekran's API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import EXE, Tenant, free_port

from sessionscope.forward.activitywatch import (
    Config,
    ForwardError,
    Identity,
    State,
    forward_once,
    plan,
)

AW_SERVER = Path(sys.executable).with_name("aw-server")
MIN = timedelta(minutes=1)


def _isolated_home(root: Path) -> dict[str, str]:
    """HOME and XDG directories under ``root``: aw-server's and aw-client's config and data."""
    env = {"HOME": str(root)}
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    return env


@pytest.fixture(scope="module")
def aw_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """This process' aw-client sees its own config and lock files (restored afterwards)."""
    env = _isolated_home(tmp_path_factory.mktemp("aw-home"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def aw_url(aw_home: dict[str, str]) -> Iterator[str]:
    """aw-server as a process, in testing mode, on a free port."""
    if not AW_SERVER.exists():
        pytest.skip("aw-server is not installed (pip install -e '.[dev]')")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AW_")}
    log = aw_home["HOME"] + "/aw-server.log"
    output = open(log, "wb")  # noqa: SIM115 - closed once aw-server has stopped
    proc = subprocess.Popen(
        [str(AW_SERVER), "--testing", "--host", "127.0.0.1", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env={**env, **aw_home},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError(f"aw-server exited: {output.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/0/info", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("aw-server did not answer in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()


@pytest.fixture(scope="module")
def aw(aw_url: str) -> Any:
    """The real aw-client, pointed at that server."""
    from aw_client import ActivityWatchClient

    port = int(aw_url.rsplit(":", 1)[1])
    return ActivityWatchClient("sessionscope-test", testing=True, host="127.0.0.1", port=port)


class Desk:
    """One host's watchers, as aw-watcher-afk and aw-watcher-window would write them."""

    def __init__(self, client: Any, host: str) -> None:
        self.client, self.host = client, host
        self.afk, self.window = f"aw-watcher-afk_{host}", f"aw-watcher-window_{host}"
        client.client_hostname = host
        client.create_bucket(self.afk, "afkstatus")
        client.create_bucket(self.window, "currentwindow")

    def status(self, status: str, start: datetime, end: datetime) -> None:
        from aw_core.models import Event

        self.client.insert_event(
            self.afk, Event(timestamp=start, duration=end - start, data={"status": status})
        )

    def heartbeat(self, status: str, at: datetime) -> None:
        """What aw-watcher-afk sends: the last event grows up to ``at`` (same data)."""
        from aw_core.models import Event

        event = Event(timestamp=at, duration=0, data={"status": status})
        self.client.heartbeat(self.afk, event, pulsetime=3600)

    def app(self, app: str, title: str, start: datetime, end: datetime) -> None:
        from aw_core.models import Event

        event = Event(timestamp=start, duration=end - start, data={"app": app, "title": title})
        self.client.insert_event(self.window, event)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def ekran(http: httpx.Client, tenant: Tenant) -> list[dict[str, Any]]:
    r = http.post("/ekranapi/sessions", json={}, headers={"ApiKey": tenant.api_key})
    assert r.status_code == 200, r.text
    return sorted(r.json()["sessions"], key=lambda s: s["loginDate"])


def ekran_date(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def test_forwarded_sessions_in_ekran(
    aw_home: dict[str, str],
    aw: Any,
    aw_url: str,
    base_url: str,
    http: httpx.Client,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    desk = Desk(aw, f"desk-{tenant.project.id}")
    t0 = (datetime.now(UTC) - timedelta(hours=6)).replace(second=0, microsecond=0)
    at = lambda minutes: t0 + minutes * MIN  # noqa: E731
    # First part: 30 minutes at the desk, 20 away (idle: longer than the 15-minute timeout).
    desk.status("not-afk", at(0), at(30))
    desk.status("afk", at(30), at(50))
    desk.status("not-afk", at(50), at(70))
    desk.app("code", "main.py", at(0), at(20))
    desk.app("firefox", "Docs", at(20), at(70))

    state = tmp_path / "aw-state.json"
    cfg = Config(
        aw_url=aw_url,
        url=base_url,
        api_key=tenant.api_key,
        state_path=state,
        hostname=desk.host,
        user_name="ada",
        day_start_min=None,
        since_ms=ms(t0 - timedelta(hours=1)),
    )
    # Each pass runs as if at the end of the data it sees (the data lies in the past).
    first = forward_once(cfg, now_ms=ms(at(71)))
    assert first.events and first.accepted == len(first.events)
    assert "logout" not in {e["type"] for e in first.events}  # still at the desk

    # 5 minutes away (under the timeout: not idle), 15 more at the desk, two hours away
    # (a new session), then at the desk again: the watcher's heartbeats are still coming.
    desk.status("afk", at(70), at(75))
    desk.status("not-afk", at(75), at(90))
    desk.status("afk", at(90), at(210))
    desk.status("not-afk", at(210), at(215))
    desk.app("firefox", "Docs", at(70), at(90))
    desk.app("slack", "#general", at(210), at(215))
    second = forward_once(cfg, now_ms=ms(at(216)))
    assert second.events and second.duplicates == 0  # nothing of the first pass again
    assert [e["type"] for e in second.events].count("logout") == 1

    # Half an hour at the desk in all (a heartbeat extends the event), then away for good. The
    # last pass is the command itself, at the real time: the second session has ended.
    desk.heartbeat("not-afk", at(240))
    desk.status("afk", at(240), at(250))
    args = [
        *EXE,
        "forward",
        "activitywatch",
        "--aw-url",
        aw_url,
        "--url",
        base_url,
        "--api-key",
        tenant.api_key,
        "--once",
        "--state",
        str(state),
        "--hostname",
        desk.host,
        "--user-name",
        "ada",
        "--day-start",
        "off",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stderr, Path(aw_home["HOME"], "aw-server.log").read_text())
    third = json.loads(done.stdout.strip().splitlines()[-1])
    assert third["events"] > 0 and third["accepted"] == third["events"]
    assert forward_once(cfg).events == []  # nothing new

    sessions = ekran(http, tenant)
    assert len(sessions) == 2, sessions
    a, b = sessions
    assert (a["loginDate"], a["logoutDate"]) == (ekran_date(at(0)), ekran_date(at(90)))
    assert a["duration"] == "01:30:00.0000000"
    assert a["idleTime"] == "00:20:00.0000000"
    assert a["productivityTime"] == "01:10:00.0000000"
    assert (b["loginDate"], b["logoutDate"]) == (ekran_date(at(210)), ekran_date(at(240)))
    assert b["idleTime"] == "00:00:00.0000000"
    assert b["productivityTime"] == "00:30:00.0000000"
    info = httpx.get(f"{aw_url}/api/0/info").json()
    for s in sessions:
        assert s["userName"] == "ada" and s["clientName"] == desk.host
        assert s["clientGuid"] == info["device_id"]
    assert a["userId"] == b["userId"]
    short = http.get("/ekranapi/sessions", headers={"ApiKey": tenant.api_key}).json()
    assert sorted(s["sessionId"] for s in short) == sorted(s["sessionId"] for s in sessions)

    # Apps and titles ride on the activity events.
    detail = http.get(f"/api/v1/sessions/desktop/{a['sessionId']}", headers=tenant.auth).json()
    apps = {(e.get("app"), e.get("title")) for e in detail["events"] if e["type"] == "activity"}
    assert {("code", "main.py"), ("firefox", "Docs")} <= apps
    types = [e["type"] for e in detail["events"]]
    assert types[0] == "login" and types[-1] == "logout"

    # Without its state file the forwarder sends the same events again: all duplicates.
    state.unlink()
    again = forward_once(cfg)
    assert again.events and again.accepted == 0
    assert again.duplicates == len(again.events)
    assert len(ekran(http, tenant)) == 2


WHO = Identity(7, "ada", "guid-1", "desk")


def _afk(status: str, start_ms: int, minutes: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat()
    return {"timestamp": stamp, "duration": minutes * 60, "data": {"status": status}}


def test_plan_cuts_at_the_day_boundary_and_keeps_a_running_period_open() -> None:
    # 03:30 to 04:30 local time at the desk: cut at 04:00 into two sessions.
    day = datetime.now().astimezone().replace(hour=3, minute=30, second=0, microsecond=0)
    start = int((day - timedelta(days=2)).timestamp() * 1000)
    events = [_afk("not-afk", start, 60), _afk("afk", start + 3_600_000, 10)]
    now = start + 5 * 3_600_000
    done = plan(State(start - 1), WHO, events, [], now_ms=now, day_start_min=4 * 60)
    logins = [e for e in done.events if e["type"] == "login"]
    logouts = [e for e in done.events if e["type"] == "logout"]
    boundary = start + 30 * 60_000
    assert [e["time"] for e in logins] == [start, boundary]
    assert [e["time"] for e in logouts] == [boundary, start + 3_600_000]
    assert logins[0]["session"] != logins[1]["session"]

    # A period still running: activity up to now, no logout, and the next pass goes on.
    running = [_afk("not-afk", start, 10)]
    first = plan(
        State(start - 1), WHO, running, [], now_ms=start + 10 * 60_000 + 5000, day_start_min=None
    )
    assert first.events[0]["type"] == "login"
    assert "logout" not in [e["type"] for e in first.events]
    assert first.state is not None and first.state.session is not None
    grown = [_afk("not-afk", start, 20), _afk("afk", start + 20 * 60_000, 1)]
    second = plan(first.state, WHO, grown, [], now_ms=now, day_start_min=None)
    ids = {e["id"] for e in first.events}
    assert not ids & {e["id"] for e in second.events}
    assert [e["type"] for e in second.events][-1] == "logout"
    assert {e["session"] for e in second.events} == {first.state.session}


def test_a_host_without_afk_bucket_is_an_error(aw_url: str, base_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    cfg = Config(
        aw_url=aw_url, url=base_url, api_key="unused", state_path=state, hostname="no-such-host"
    )
    with pytest.raises(ForwardError, match="no afkstatus bucket for host 'no-such-host'"):
        forward_once(cfg)
    assert not state.exists()


def test_a_refused_key_is_an_error_and_nothing_is_saved(
    aw: Any, aw_url: str, base_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    # The events go through sessionscope.client: a refusal is a ClientError, said in a line.
    desk = Desk(aw, f"desk-refused-{tenant.project.id}")
    t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    desk.status("not-afk", t0, t0 + 10 * MIN)
    state = tmp_path / "state.json"
    cfg = Config(
        aw_url=aw_url,
        url=base_url,
        api_key="ssk_not_a_real_key",
        state_path=state,
        hostname=desk.host,
        since_ms=ms(t0 - timedelta(hours=1)),
    )
    with pytest.raises(ForwardError, match=r"^sessionscope answered 401 \w+: "):
        forward_once(cfg, now_ms=ms(t0 + 11 * MIN))
    assert not state.exists()
