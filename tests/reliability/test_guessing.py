"""Credential guessing: past the limit of refused credentials, an address's new credentials get
a 429 with Retry-After in each family's error shape; credentials it had accepted keep working;
other addresses are not affected; the table of addresses stays bounded."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sessionscope.api.attempts import MAX_KNOWN, FailedAttempts
from sessionscope.app import create_app
from sessionscope.config import Settings, load_settings
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.factories import player
from tests.reliability.conftest import Creds, make_creds
from tests.reliability.server import served
from tests.reliability.shapes import check_answer, family

LIMIT = 3
BAD_KEY = "ssk_000000000000_guessedguessedguessed"


@pytest.fixture(scope="module")
def creds(store: ClickHouseStore, ingestor: Ingestor) -> Creds:
    return make_creds(store, ingestor, "guess")


@pytest.fixture(scope="module")
def app(settings: Settings, store: ClickHouseStore, ingestor: Ingestor) -> Any:
    limited = dataclasses.replace(settings, auth_failure_limit=LIMIT, auth_failure_window_s=60)
    return create_app(limited, store=store, ingestor=ingestor)


def _send(app: Any, address: str, method: str, target: str, **kwargs: Any) -> httpx.Response:
    """One request through the app from client ``address``."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, target, **kwargs)

    return anyio.run(go)


def _basic(email: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()}


#: Per family: a read target, and the headers of a bad and of a good credential for it.
Case = tuple[str, Callable[[Creds], dict[str, str]], Callable[[Creds], dict[str, str]]]
CASES: dict[str, Case] = {
    "native": (
        "/api/v1/sessions?kind=player&limit=1",
        lambda c: {"Authorization": f"Bearer {BAD_KEY}"},
        Creds.native,
    ),
    "vpe": (
        "/v1/sessionRecent?limit=1",
        lambda c: {"x-api-key": BAD_KEY, "x-project-id": str(c.project_id)},
        Creds.vpe,
    ),
    "livestation": (
        "/api/v2/events?pageNo=1&pageSize=1",
        lambda c: Creds(0, "", "guessed-access-key", "x", "", "").livestation(
            "GET", "/api/v2/events?pageNo=1&pageSize=1"
        ),
        lambda c: c.livestation("GET", "/api/v2/events?pageNo=1&pageSize=1"),
    ),
    "ekran": ("/ekranapi/sessions", lambda c: {"ApiKey": BAD_KEY}, Creds.ekran),
    "thousandeyes": (
        "/v6/endpoint-data/user-sessions.json",
        lambda c: _basic(c.te_email, "guessed-token"),
        Creds.thousandeyes,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_burst_of_bad_credentials_gets_429_in_the_family_shape(
    app: Any, creds: Creds, name: str
) -> None:
    target, bad, good = CASES[name]
    address = f"10.16.{sorted(CASES).index(name)}.1"
    assert family(target.split("?")[0]) == name
    accepted = _send(app, address, "GET", target, headers=good(creds))
    assert accepted.status_code == 200, accepted.text  # before the burst: known from now on
    for _ in range(LIMIT):
        refused = _send(app, address, "GET", target, headers=bad(creds))
        check_answer(refused, "credentials")
        assert refused.status_code == 401, refused.text
    for _ in range(3):
        limited = _send(app, address, "GET", target, headers=bad(creds))
        check_answer(limited, "credentials")
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 60
    # The credential the address had accepted still works, unslowed; another address's
    # refusals are still checked (401), and its good credentials work.
    again = _send(app, address, "GET", target, headers=good(creds))
    assert again.status_code == 200, again.text
    elsewhere = _send(app, address + "0", "GET", target, headers=bad(creds))
    assert elsewhere.status_code == 401, elsewhere.text
    assert _send(app, address + "0", "GET", target, headers=good(creds)).status_code == 200


def test_ingest_on_the_hot_path_is_limited_alike(app: Any, creds: Creds) -> None:
    """``POST /api/v1/events`` is answered in front of the middleware stack: the same limit."""
    address, bad = "10.19.0.1", {"Authorization": f"Bearer {BAD_KEY}"}
    event = [player("playing", session="guessing-hot-path")]
    sent = _send(app, address, "POST", "/api/v1/events", json=event, headers=creds.native())
    assert sent.is_success, sent.text
    for status in [401] * LIMIT + [429] * 2:
        response = _send(app, address, "POST", "/api/v1/events", json=[], headers=bad)
        check_answer(response, "credentials")
        assert response.status_code == status, response.text
    assert int(response.headers["retry-after"]) >= 1 and response.headers["x-frame-options"]
    keyed = _send(app, address, "POST", f"/api/v1/events?key={BAD_KEY}x", json=[])
    assert keyed.status_code == 429  # a key in the query is a credential too
    good = _send(app, address, "POST", "/api/v1/events", json=event, headers=creds.native())
    assert good.is_success, good.text


def test_a_new_credential_waits_while_its_address_is_blocked(app: Any, creds: Creds) -> None:
    """Checking it would tell a guesser which guess was right: it gets the 429 too, and a
    request without credentials (a page, the health check) is not affected."""
    address = "10.17.0.1"
    bad = {"Authorization": f"Bearer {BAD_KEY}"}
    for _ in range(LIMIT):
        assert _send(app, address, "GET", "/api/v1/project", headers=bad).status_code == 401
    for headers in ({"Authorization": f"Bearer {BAD_KEY}"}, creds.native()):
        response = _send(app, address, "GET", "/api/v1/project", headers=headers)
        check_answer(response, "credentials")
        assert response.status_code == 429, response.text
    missing = _send(app, address, "GET", "/api/v1/project")  # no credential: checked, 401
    check_answer(missing, "credentials")
    assert missing.status_code == 401
    assert _send(app, address, "GET", "/healthz").status_code == 200


def test_the_dashboard_sign_in_form_and_links(app: Any, creds: Creds) -> None:
    address = "10.18.0.1"
    for _ in range(LIMIT - 1):
        form = _send(app, address, "POST", "/login", data={"api_key": BAD_KEY})
        check_answer(form, "credentials")
        assert form.status_code == 401
    link = _send(app, address, "GET", "/login?token=guessed.link.token")
    check_answer(link, "credentials")
    assert link.status_code == 400  # a link that does not work counts as well
    for request in (
        {"method": "POST", "target": "/login", "data": {"api_key": creds.api_key}},
        {"method": "POST", "target": "/login", "data": {"email": creds.te_email, "token": "x"}},
        {"method": "GET", "target": "/login?token=guessed.link.token"},
    ):
        response = _send(app, address, **request)
        check_answer(response, "credentials")
        assert response.status_code == 429, response.text
        assert "try again in" in response.text and int(response.headers["retry-after"]) >= 1
        assert "Content-Security-Policy" in response.headers
    assert _send(app, address, "GET", "/login").status_code == 200  # the form itself
    signed = _send(app, "10.18.0.2", "POST", "/login", data={"api_key": creds.api_key})
    assert signed.status_code == 303


def test_known_credentials_and_the_window_with_a_clock() -> None:
    now = [0.0]
    attempts = FailedAttempts(3, 60, clock=lambda: now[0])
    good, other = hash("good"), hash("other")
    attempts.accepted("a", good)
    attempts.refused("a", None)
    attempts.refused("a", hash("bad"))
    attempts.refused("a", None)
    assert attempts.wait_s("a", hash("bad")) == 60
    assert attempts.wait_s("a", good) == 0 and attempts.wait_s("a", None) == 0
    now[0] = 59.5
    assert attempts.wait_s("a", other) == 1
    now[0] = 60.0  # the window has passed: checked again, counted in a new window
    assert attempts.wait_s("a", other) == 0
    attempts.refused("a", good)  # a known credential refused (revoked) is known no longer
    attempts.refused("a", None)
    attempts.refused("a", None)
    assert attempts.wait_s("a", good) == 60
    for i in range(MAX_KNOWN * 4):  # accepted credentials per address are bounded
        attempts.accepted("b", i)
    for _ in range(3):
        attempts.refused("b", None)
    assert attempts.wait_s("b", MAX_KNOWN * 4 - 1) == 0 and attempts.wait_s("b", 0) == 60
    assert FailedAttempts(0, 60).wait_s("a", other) == 0  # 0: off


def test_memory_stays_bounded_with_many_addresses() -> None:
    attempts = FailedAttempts(3, 60, max_addresses=1000)
    for i in range(100_000):
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        for _ in range(3):
            attempts.refused(address, hash(i))
            attempts.accepted(address, hash(-i))
        assert len(attempts) <= 1000
    # The most recently refused are the ones kept (the oldest forgotten first).
    assert attempts.tracked("10.1.134.159") and not attempts.tracked("10.0.0.0")
    assert attempts.wait_s("10.1.134.159", hash("new")) > 0


def test_settings_from_the_environment() -> None:
    settings = load_settings(
        {
            "SESSIONSCOPE_SECRET_KEY": "x",
            "SESSIONSCOPE_AUTH_FAILURE_LIMIT": "5",
            "SESSIONSCOPE_AUTH_FAILURE_WINDOW_S": "120",
        }
    )
    assert (settings.auth_failure_limit, settings.auth_failure_window_s) == (5, 120)
    assert Settings().auth_failure_limit == 30 and Settings().auth_failure_window_s == 60
    with pytest.raises(ValueError, match="SESSIONSCOPE_AUTH_FAILURE_WINDOW_S"):
        load_settings({"SESSIONSCOPE_SECRET_KEY": "x", "SESSIONSCOPE_AUTH_FAILURE_WINDOW_S": "0"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data: Path = tmp_path_factory.mktemp("guessing") / "data"
    with served(data, auth_failure_limit="5") as s:
        yield s


@pytest.mark.e2e
def test_a_serve_process_limits_guessing_per_address(server: Any) -> None:
    """In a real server: addresses behind a trusted proxy (``X-Forwarded-For`` from
    127.0.0.1) are limited one by one, and the log names the address, never a secret."""
    with httpx.Client(base_url=server.base, timeout=30) as http:
        good = server.creds.native()
        proxied = {"X-Forwarded-For": "203.0.113.7"}
        assert http.get("/api/v1/project", headers={**good, **proxied}).status_code == 200
        statuses = [
            http.get("/api/v1/project", headers={"Authorization": f"Bearer {BAD_KEY}", **proxied})
            for _ in range(8)
        ]
        for response in statuses:
            check_answer(response, "credentials")
        assert [r.status_code for r in statuses] == [401] * 5 + [429] * 3
        assert http.get("/api/v1/project", headers={**good, **proxied}).status_code == 200
        other = {"Authorization": f"Bearer {BAD_KEY}", "X-Forwarded-For": "203.0.113.8"}
        assert http.get("/api/v1/project", headers=other).status_code == 401
    log = server.log()
    assert log.count("too many refused credentials from 203.0.113.7") == 1, log[-3000:]
    assert BAD_KEY not in log and server.creds.api_key not in log


def test_the_admin_token_it_had_used_keeps_working_while_blocked(app: Any) -> None:
    """The operator's automation on a host whose other clients send bad keys is not locked
    out: an admin token accepted from the address before the block is still accepted."""
    address, token = "10.20.0.1", app.state.ctx.admin_token
    admin = {"Authorization": f"Bearer {token}"}
    assert _send(app, address, "GET", "/api/v1/admin/projects", headers=admin).status_code == 200
    bad = {"Authorization": f"Bearer {BAD_KEY}"}
    for status in [401] * LIMIT + [429]:
        response = _send(app, address, "GET", "/api/v1/admin/projects", headers=bad)
        assert response.status_code == status, response.text
    again = _send(app, address, "GET", "/api/v1/admin/projects", headers=admin)
    assert again.status_code == 200, again.text
