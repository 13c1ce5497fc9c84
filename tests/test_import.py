"""Importers: a second sessionscope server, on its own data directory with simulated data,
plays the vendor; ``sessionscope import`` pulls through each vendor API into the test store,
and both servers then answer that API with the same sessions and the same metrics (modulo the
ids that cannot carry over, see README "Moving from NAVER Cloud, Ekran or ThousandEyes")."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionscope.commands import importing
from sessionscope.config import Settings
from sessionscope.domain.events import Event
from sessionscope.importers import ekran, ncp_vpe
from sessionscope.importers.driver import (
    BadCredentials,
    ImportFailed,
    Job,
    RateLimitedHttp,
    StateFile,
    state_path,
)
from sessionscope.importers.ekran import parse_timespan, session_events
from sessionscope.importers.ncp_livestation import signer
from sessionscope.importers.thousandeyes import follow
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import EXE, free_port, serve_process
from tests.factories import BASE, iso
from tests.test_cli import cli, cli_json

END = BASE + timedelta(days=1)
DAY = {"startDate": (END - timedelta(days=2)).strftime("%Y-%m-%d"), "endDate": END.strftime("%F")}
TE_RANGE = {"from": iso(END - timedelta(days=2))[:19], "to": iso(END)[:19]}
_names = itertools.count(1)


@dataclass(frozen=True)
class Vendor:
    base: str
    project_id: int
    api_key: str
    email: str
    token: str
    access_key: str
    secret_key: str
    #: A copy of its data directory, for another server (the rate-limited vendor).
    copy: Path


def _run(data: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    done = subprocess.run(
        [*EXE, *args, "--data-dir", str(data), "--json"],
        capture_output=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vendor]:
    """A real ``sessionscope serve`` on its own data directory: a day of simulated traffic."""
    data = tmp_path_factory.mktemp("vendor") / "data"
    project = _run(data, "projects", "create", "vendor")
    key = _run(data, "keys", "create", "--project", "vendor")
    user = _run(data, "users", "create", "ops@vendor.example", "--project", "vendor")
    ncp = _run(data, "keys", "create", "--project", "vendor", "--ncp")
    _run(
        data, "simulate", "--project", "vendor", "--days", "1", "--end", iso(END), "--seed", "18",
        "--players", "50", "--channels", "2", "--desktop-users", "5", "--endpoint-agents", "3",
    )  # fmt: skip
    copy = data.parent / "copy"
    shutil.copytree(data, copy, symlinks=True)  # the engine links tables relatively
    with serve_process(data) as base:
        yield Vendor(
            base, project["id"], key["api_key"], user["email"], user["token"],
            ncp["access_key"], ncp["secret_key"], copy,
        )  # fmt: skip


@dataclass(frozen=True)
class Local:
    name: str
    project_id: int
    api_key: str
    email: str
    token: str
    access_key: str
    secret_key: str


@pytest.fixture
def local(loaded_store: ClickHouseStore) -> Local:
    """An empty project of the test store, with an API key and a ThousandEyes user."""
    name = f"import-{next(_names)}-{time.monotonic_ns() % 100000}"
    project = loaded_store.create_project(name)
    email = f"{name}@local.example"
    token = loaded_store.create_user(email, [project.id])
    api_key = loaded_store.create_api_key(project.id)
    return Local(
        name, project.id, api_key, email, token, *loaded_store.create_signing_key(project.id)
    )


def _import(settings: Settings, vendor: str, *args: str) -> dict[str, Any]:
    return dict(cli_json(settings, "import", vendor, *args))


# ------------------------------------------------------------------------------ NAVER VPE


def _vpe_args(vendor: Vendor, local: Local) -> list[str]:
    return [
        "--url", vendor.base, "--project", local.name,
        "--api-key", vendor.api_key, "--project-id", str(vendor.project_id),
    ]  # fmt: skip


def _vpe(base: str, key: str, pid: int, path: str, **params: str) -> Any:
    headers = {"x-api-key": key, "x-project-id": str(pid)}
    answer = httpx.get(base + path, params=params, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _without_no(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``no`` is made from the session id, which NAVER never shows (so it cannot carry over);
    sessions ending in the same second may come in another order for the same reason."""
    out = [{k: v for k, v in item.items() if k != "no"} for item in items]
    return sorted(out, key=lambda i: (i["logDate"], i["uuid"], json.dumps(i["sessionLog"])))


def _assert_vpe_same(vendor: Vendor, local: Local, base_url: str) -> None:
    theirs = _vpe(vendor.base, vendor.api_key, vendor.project_id, "/v1/sessionRecent", **DAY)
    ours = _vpe(base_url, local.api_key, local.project_id, "/v1/sessionRecent", **DAY)
    assert 10 <= len(theirs["result"]) < 100
    assert ours["message"] == theirs["message"]
    assert _without_no(ours["result"]) == _without_no(theirs["result"])
    users = {item["uuid"] for item in theirs["result"]}
    for uuid in sorted(users):
        path = f"/v1/sessionRecent/{uuid}"
        detail = _vpe(base_url, local.api_key, local.project_id, path)
        assert detail == _vpe(vendor.base, vendor.api_key, vendor.project_id, path), uuid
    for chart in ("playCnt", "playTimeSum", "uniqUserCnt"):
        path = f"/v1/charts/{chart}"
        assert _vpe(base_url, local.api_key, local.project_id, path, **DAY) == _vpe(
            vendor.base, vendor.api_key, vendor.project_id, path, **DAY
        ), chart


def test_ncp_vpe_import_gives_the_same_sessions_and_details(
    settings: Settings, vendor: Vendor, local: Local, base_url: str
) -> None:
    first = _import(settings, "ncp-vpe", *_vpe_args(vendor, local))
    assert first["sessions"] >= 10 and first["accepted"] > 100 and first["duplicates"] == 0
    _assert_vpe_same(vendor, local, base_url)
    again = _import(settings, "ncp-vpe", *_vpe_args(vendor, local))
    assert again["accepted"] == 0 and again["duplicates"] == first["accepted"]
    assert not again["resumed"]
    _assert_vpe_same(vendor, local, base_url)


def test_ncp_vpe_import_splits_full_windows(
    settings: Settings, vendor: Vendor, local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With at most 5 sessions an answer, the walk must split windows to get them all.
    monkeypatch.setattr(ncp_vpe, "MAX_PER_CALL", 5)
    pages: list[int] = []
    real_page = ncp_vpe._Walk.page

    def page(self: Any, video_type: str, start: int, end: int) -> list[dict[str, Any]]:
        items = real_page(self, video_type, start, end)[:5]  # as a vendor capped at 5
        pages.append(len(items))
        return items

    monkeypatch.setattr(ncp_vpe._Walk, "page", page)
    done = _import(settings, "ncp-vpe", *_vpe_args(vendor, local))
    total = _vpe(vendor.base, vendor.api_key, vendor.project_id, "/v1/sessionRecent",
                 startDate="2000-01-01")  # fmt: skip
    assert done["sessions"] == len(total["result"]) and 5 in pages


def test_ncp_vpe_import_resumes_after_an_interruption(
    settings: Settings,
    vendor: Vendor,
    local: Local,
    ingestor: Ingestor,
    loaded_store: ClickHouseStore,
    base_url: str,
) -> None:
    project = loaded_store.get_project(local.project_id)
    assert project is not None
    url = vendor.base
    path = state_path(
        settings.data_dir, "ncp-vpe", url, project.id, None, None, str(vendor.project_id)
    )
    calls = 0

    def submit(events: list[Event]) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # cut short after the first window was stored
        return ingestor.submit(project.id, events)

    headers = {"x-api-key": vendor.api_key, "x-project-id": str(vendor.project_id)}
    with RateLimitedHttp("ncp-vpe", url, headers=headers) as http:
        job = Job(http=http, project=project, state=StateFile.load(path), submit=submit)
        with pytest.raises(KeyboardInterrupt):
            ncp_vpe.run(job)
    stored_first = job.accepted
    assert stored_first > 0 and "VOD" in StateFile.load(path).data["done_until"]
    resumed = _import(settings, "ncp-vpe", *_vpe_args(vendor, local))
    assert resumed["resumed"] and resumed["duplicates"] == 0
    _assert_vpe_same(vendor, local, base_url)


def test_bad_credentials_are_refused_in_one_line(
    settings: Settings, vendor: Vendor, local: Local
) -> None:
    secret = "ssk_not_a_real_key_0123456789"
    cases = [
        ("ncp-vpe", "--api-key", secret, "--project-id", str(vendor.project_id)),
        ("ekran", "--api-key", secret),
        ("thousandeyes", "--email", vendor.email, "--token", secret),
        ("ncp-livestation", "--access-key", vendor.access_key, "--secret-key", secret),
    ]
    for vendor_name, *creds in cases:
        result = cli(
            settings, "import", vendor_name, "--url", vendor.base, "--project", local.name, *creds
        )
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused the credentials (HTTP 401)" in lines[0], lines
        assert "Traceback" not in result.output and secret not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_account_group_not_the_users_is_refused(
    settings: Settings, local: Local, loaded_store: ClickHouseStore, base_url: str
) -> None:
    # A real ThousandEyes-compatible server answers 403 for an aid the user is not assigned to.
    other = loaded_store.create_project(f"{local.name}-other")
    args = ["--url", base_url, "--project", local.name, "--email", local.email,
            "--token", local.token, "--aid", str(other.id)]  # fmt: skip
    result = cli(settings, "import", "thousandeyes", *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the account (HTTP 403)" in lines[0], lines
    assert "check --email, --token and --aid" in lines[0] and local.token not in result.output


def test_an_unreachable_url_is_said_at_once(settings: Settings, local: Local) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = cli(settings, "import", "ekran", "--url", closed, "--project", local.name,
                 "--api-key", "ssk_whatever")  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ekran: cannot reach {closed}: ConnectError" in lines[0], lines


# ------------------------------------------------------------------------------ Ekran


def _ekran(base: str, key: str, **body: Any) -> Any:
    answer = httpx.post(base + "/ekranapi/sessions", json=body, headers={"ApiKey": key})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_ekran_import_gives_the_same_sessions_and_totals(
    settings: Settings, vendor: Vendor, local: Local, base_url: str
) -> None:
    args = ["--url", vendor.base, "--project", local.name, "--api-key", vendor.api_key]
    first = _import(settings, "ekran", *args)
    theirs = _ekran(vendor.base, vendor.api_key)["sessions"]
    closed = [s for s in theirs if s["logoutDate"] is not None]
    assert len(closed) >= 3 and first["sessions"] == len(closed)
    assert first["skipped"] == len(theirs) - len(closed)  # still open: their totals grow
    ours = _ekran(base_url, local.api_key)
    assert ours == {"sessions": closed, "totalCount": len(closed)}
    again = _import(settings, "ekran", *args)
    assert again["accepted"] == 0 and again["duplicates"] == first["accepted"]
    assert _ekran(base_url, local.api_key)["sessions"] == closed


def test_ekran_import_resumes_after_ctrl_c(
    settings: Settings,
    vendor: Vendor,
    local: Local,
    base_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A page a session, so that there is a checkpoint after each; Ctrl-C while the third
    # logged-out session is being stored.
    monkeypatch.setattr(ekran, "PAGE_SIZE", 1)
    real_submit = importing.submit
    submitted: list[int] = []

    def interrupted(ingestor: Ingestor, project_id: int, events: list[Event]) -> tuple[int, int]:
        submitted.append(len(events))
        if len(submitted) == 3:
            raise KeyboardInterrupt
        return real_submit(ingestor, project_id, events)

    monkeypatch.setattr(importing, "submit", interrupted)
    args = ["--url", vendor.base, "--project", local.name, "--api-key", vendor.api_key]
    cut = cli(settings, "import", "ekran", *args)
    assert cut.exit_code != 0 and len(submitted) == 3
    theirs = _ekran(vendor.base, vendor.api_key)
    closed = [s for s in theirs["sessions"] if s["logoutDate"] is not None]
    assert _ekran(base_url, local.api_key)["sessions"] == closed[:2]  # what was stored
    path = state_path(settings.data_dir, "ekran", vendor.base, local.project_id, None, None)
    state = json.loads(path.read_text())
    assert not state.get("finished") and state["progress"]["ekran"] == state["page"] >= 2

    monkeypatch.setattr(importing, "submit", real_submit)
    resumed = _import(settings, "ekran", *args)
    assert resumed["resumed"] and resumed["duplicates"] == 0
    assert resumed["sessions"] == len(closed) - 2
    assert resumed["sessions"] + resumed["skipped"] == theirs["totalCount"] - state["page"]
    assert _ekran(base_url, local.api_key) == {"sessions": closed, "totalCount": len(closed)}
    done = json.loads(path.read_text())
    assert done["finished"] and done["progress"] == {"ekran": theirs["totalCount"]}


def test_ekran_timespans() -> None:
    assert parse_timespan("03:32:09.4100000") == ((3 * 60 + 32) * 60 + 9) * 1000 + 410
    assert parse_timespan("1.02:03:04.5000000") == (((24 + 2) * 60 + 3) * 60 + 4) * 1000 + 500
    assert parse_timespan("00:00:00") == 0


# ------------------------------------------------------------------------------ ThousandEyes

#: Made from the account group and the session key (userSessionId), the local dashboard
#: (permalink), and when the local store took the events (committed): they cannot carry over.
TE_LOCAL = {"userSessionId", "permalink", "committed"}
TE_LIST = "/v6/endpoint-data/user-sessions"


def _te(base: str, email: str, token: str, path: str, **params: str) -> Any:
    answer = httpx.get(base + path, params=params, auth=(email, token), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _te_sessions(
    base: str, email: str, token: str, detail: Callable[[str], str]
) -> list[dict[str, Any]]:
    out = []
    for entry in _te(base, email, token, f"{TE_LIST}.json", **TE_RANGE)["userSessions"]:
        full = _te(base, email, token, detail(entry["userSessionId"]))["userSessions"][0]
        out.append({k: v for k, v in full.items() if k not in TE_LOCAL})
    return out


def test_thousandeyes_import_gives_the_same_sessions_and_pages(
    settings: Settings, vendor: Vendor, local: Local, base_url: str
) -> None:
    args = [
        "--url", vendor.base, "--project", local.name, "--email", vendor.email,
        "--token", vendor.token, "--aid", str(vendor.project_id),
    ]  # fmt: skip
    first = _import(settings, "thousandeyes", *args)
    assert first["sessions"] >= 10 and first["duplicates"] == 0

    def detail(sid: str) -> str:
        return f"{TE_LIST}/{sid}.json"

    theirs = _te_sessions(vendor.base, vendor.email, vendor.token, detail)
    ours = _te_sessions(base_url, local.email, local.token, detail)
    assert len(theirs) == first["sessions"] and all(s["pages"] for s in theirs)
    assert ours == theirs
    again = _import(settings, "thousandeyes", *args)
    assert again["accepted"] == 0 and again["duplicates"] == first["accepted"]


# ------------------------------------------------------------------------------ Live Station


def _livestation(base: str, access_key: str, secret_key: str, path: str) -> Any:
    request = httpx.Request("GET", base + path)
    signer(access_key, secret_key)(request)
    with httpx.Client(timeout=60) as client:
        answer = client.send(request)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_ncp_livestation_import_gives_the_same_events_and_publish_periods(
    settings: Settings, vendor: Vendor, local: Local, base_url: str
) -> None:
    args = [
        "--url", vendor.base, "--project", local.name,
        "--access-key", vendor.access_key, "--secret-key", vendor.secret_key,
    ]  # fmt: skip
    first = _import(settings, "ncp-livestation", *args)
    theirs = _livestation(vendor.base, vendor.access_key, vendor.secret_key, "/api/v2/events")
    ours = _livestation(base_url, local.access_key, local.secret_key, "/api/v2/events")
    assert theirs["total"] == first["events"] == first["accepted"] >= 10
    assert ours["total"] == theirs["total"]

    def ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # events of one millisecond: the order of their ids, which cannot carry over
        return sorted(items, key=lambda e: (-e["timestamp"], json.dumps(e, sort_keys=True)))

    assert ordered(ours["content"]) == ordered(theirs["content"])
    channel = theirs["content"][0]["channelId"]
    path = f"/api/v2/channels/{channel}/publish-log"
    assert _livestation(base_url, local.access_key, local.secret_key, path) == _livestation(
        vendor.base, vendor.access_key, vendor.secret_key, path
    )
    sessions = "/api/v1/sessions?kind=channel&limit=1000"
    native_theirs = httpx.get(vendor.base + sessions, headers=_bearer(vendor.api_key)).json()
    native_ours = httpx.get(base_url + sessions, headers=_bearer(local.api_key)).json()
    assert native_ours["sessions"] and _settled(native_ours) == _settled(native_theirs)
    again = _import(settings, "ncp-livestation", *args)
    assert again["accepted"] == 0 and again["duplicates"] == first["accepted"]


def _settled(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Sessions without the duration of those still live (it runs up to each answer's now)."""
    return [
        {k: v for k, v in s.items() if not (s["live"] and k == "duration_ms")}
        for s in answer["sessions"]
    ]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ------------------------------------------------------------------------------ rate limits


def _mock_http(responses: list[httpx.Response], slept: list[float]) -> RateLimitedHttp:
    queue = iter(responses)
    http = RateLimitedHttp("thousandeyes", "http://vendor.invalid", sleep=slept.append)
    http._client = httpx.Client(
        base_url="http://vendor.invalid", transport=httpx.MockTransport(lambda _r: next(queue))
    )
    return http


def test_rate_limits_are_respected() -> None:
    slept: list[float] = []
    reset = str(int(time.time()) + 30)
    http = _mock_http(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"errorMessage": "slow"}),
            httpx.Response(
                200,
                headers={
                    "X-Organization-Rate-Limit-Remaining": "0",
                    "X-Organization-Rate-Limit-Reset": reset,
                },
                json={"ok": 1},
            ),
            httpx.Response(503, json={}),
            httpx.Response(200, json={"ok": 2}),
        ],
        slept,
    )
    assert http.request("GET", "/a") == {"ok": 1}
    assert slept == [7]  # Retry-After; the answer that spent the budget is used at once
    assert http.request("GET", "/b") == {"ok": 2}
    assert 0 < slept[1] <= 31  # before the next request, until the window resets
    assert len(slept) == 3 and http.requests == 4


def test_forbidden_account_is_refused() -> None:
    http = _mock_http([httpx.Response(403, json={"errorMessage": "no"})], [])
    with pytest.raises(BadCredentials, match="refused the account"):
        http.request("GET", "/a")


def test_next_pages_stay_on_the_imported_host() -> None:
    base = "http://127.0.0.1:9"
    assert follow(base, None) is None
    same = f"{base}/v6/endpoint-data/user-sessions.json?cursor=x&page=2"
    assert follow(base, same) == same
    other = "https://api.example.com/v6/endpoint-data/user-sessions.json?cursor=x"
    assert follow(base, other) == "/v6/endpoint-data/user-sessions.json?cursor=x"


def test_a_session_gone_since_listed_is_none_only_when_allowed() -> None:
    http = _mock_http([httpx.Response(404, json={}), httpx.Response(404, json={})], [])
    assert http.request("GET", "/gone", missing_ok=True) is None
    with pytest.raises(ImportFailed, match="HTTP 404"):
        http.request("GET", "/gone")


def test_ekran_synthesis_reproduces_the_totals() -> None:
    item = {
        "duration": "03:32:09.4100000", "idleTime": "01:20:26.1920000",
        "productivityTime": "02:11:43.2180000", "clientGuid": "g", "clientName": "WS-1",
        "logoutDate": "2026-11-21T03:32:53.588+00:00", "loginDate": "2026-11-20T23:59:44.178+00:00",
        "sessionId": 7, "userName": "kim", "userId": 5,
    }  # fmt: skip
    events = session_events(item, 900)
    times = [e["time"] for e in events]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert [e["type"] for e in (events[0], events[-1])] == ["login", "logout"]
    assert times[-1] - times[0] == parse_timespan(item["duration"])
    assert sum(g for g in gaps if g > 900_000) == parse_timespan(item["idleTime"])
    assert all(g <= 300_000 for g in gaps if g <= 900_000)
    assert len({e["id"] for e in events}) == len(events) == len(session_events(item, 900))
    with pytest.raises(ImportFailed, match="idle timeout"):
        session_events(item, 2 * 3600)  # 1 h 20 min idle is not idle under a 2 h timeout


# ------------------------------------------------------------------------------ ThousandEyes
# under its rate limit, killed and resumed

TE_LIMITED_TEST = "test_thousandeyes_import_waits_for_the_rate_limit_and_resumes_after_a_kill"


@dataclass
class LimitedRun:
    """An import from a vendor allowing ``limit`` requests a minute: killed once the first
    window was spent, and resumed (``resumed``, still running when the fixture yields)."""

    sessions: int
    limit: int
    target: Path
    project_id: int
    email: str
    token: str
    killed_at: dict[str, Any]
    resumed: subprocess.Popen[bytes]
    out: Path
    log: Path


def _state_of(target: Path) -> dict[str, Any]:
    found = list((target / "imports").glob("thousandeyes-*.json"))
    return json.loads(found[0].read_text()) if found else {}


@pytest.fixture(scope="module")
def te_limited(vendor: Vendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedRun]:
    """A second vendor server on a copy of the vendor's data, allowing about half the
    requests the import needs a minute: the first window is spent on the list and the first
    sessions, the import then waits for the next one (without a 429 being an error)."""
    everything = {"from": "1970-01-01T00:00:00", "to": iso(END)[:19]}
    listed = _te(vendor.base, vendor.email, vendor.token, f"{TE_LIST}.json", **everything)
    assert "next" not in listed["pages"]
    n = len(listed["userSessions"])
    # Window 1: the list and limit-1 sessions; window 2: the list again and the rest.
    limit = n // 2 + 2
    assert 4 <= limit <= n and n - (limit - 1) + 1 <= limit
    tmp = tmp_path_factory.mktemp("te-limited")
    target, out, log = tmp / "data", tmp / "out.json", tmp / "import.log"
    project = _run(target, "projects", "create", "te-copy")
    user = _run(target, "users", "create", "ops@copy.example", "--project", "te-copy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    rate = {"SESSIONSCOPE_RATE_LIMIT_PER_MINUTE": str(limit)}
    with serve_process(vendor.copy, env=rate) as limited, log.open("wb") as log_fh:
        args = [
            *EXE, "import", "thousandeyes", "--url", limited, "--project", "te-copy",
            "--email", vendor.email, "--token", vendor.token, "--aid", str(vendor.project_id),
            "--to", everything["to"], "--data-dir", str(target), "--json",
        ]  # fmt: skip
        first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_fh, env=env)
        try:
            deadline = time.monotonic() + 120
            while len(_state_of(target).get("page_done", ())) < limit - 1:
                assert first.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the first window was not spent in 120 s"
                time.sleep(0.1)
            first.send_signal(signal.SIGKILL)  # while it waits for the next window
        finally:
            first.kill()
            first.wait()
        killed_at = _state_of(target)
        with out.open("wb") as out_fh:
            resumed = subprocess.Popen(args, stdout=out_fh, stderr=log_fh, env=env)
        try:
            yield LimitedRun(
                n, limit, target, project["id"], user["email"], user["token"], killed_at,
                resumed, out, log,
            )  # fmt: skip
        finally:
            resumed.kill()
            resumed.wait()


@pytest.fixture(scope="module", autouse=True)
def _rate_limited_import_first(request: pytest.FixtureRequest) -> None:
    """The rate-limited import waits up to a minute for its vendor's next window: when its
    test is selected, start it before the other tests of the module, which run meanwhile."""
    if any(item.name == TE_LIMITED_TEST for item in request.session.items):
        request.getfixturevalue("te_limited")


def test_thousandeyes_import_waits_for_the_rate_limit_and_resumes_after_a_kill(
    vendor: Vendor, te_limited: LimitedRun
) -> None:
    run = te_limited
    # Killed with the first window spent: limit-1 sessions stored and recorded.
    assert len(run.killed_at["page_done"]) == run.limit - 1
    assert run.killed_at["progress"] == {"thousandeyes": run.limit - 1}
    assert run.resumed.wait(timeout=300) == 0, run.log.read_text()[-2000:]
    done = json.loads(run.out.read_text())
    assert done["resumed"] and done["duplicates"] == 0 and done["skipped"] == 0
    assert done["sessions"] == run.sessions - (run.limit - 1)
    # The list and the rest of the sessions, plus at least one request answered 429 (the
    # window was still spent) and tried again after its Retry-After.
    assert done["requests"] > 1 + done["sessions"]
    assert "429" not in run.log.read_text() and "error" not in run.log.read_text()
    state = _state_of(run.target)
    assert state["finished"] and state["progress"] == {"thousandeyes": run.sessions}

    def detail(sid: str) -> str:
        return f"{TE_LIST}/{sid}.json"

    theirs = _te_sessions(vendor.base, vendor.email, vendor.token, detail)
    with serve_process(run.target) as copy:
        ours = _te_sessions(copy, run.email, run.token, detail)
    # The same sessions with the same pages (none twice), through the vendor API.
    assert len(theirs) == run.sessions and ours == theirs
