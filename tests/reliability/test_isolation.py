"""Tenant isolation: every kind of credential of project A against project B's data on every
route of every family, with B's real ids (as if guessed): never a byte of B's data (B's
label is in every free-text field of its events), and B's ids are not found for A."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.reliability.conftest import Creds, make_creds
from tests.reliability.record import record
from tests.reliability.shapes import check_answer

RANGE = {
    "native": "from=2025-10-09&to=2025-10-12",
    "vpe": "startDate=2025-10-09%2000:00:00&endDate=2025-10-12%2000:00:00",
    "livestation": f"startTime={1759968000000}&endTime={1760227200000}",
    "ekran": "start=2025-10-09&end=2025-10-12",
    "thousandeyes": "from=2025-10-09T00:00:00&to=2025-10-12T00:00:00",
}
KINDS = ("player", "channel", "desktop", "endpoint")


@pytest.fixture(scope="module")
def tenants(store: ClickHouseStore, ingestor: Ingestor) -> tuple[Creds, Creds]:
    return make_creds(store, ingestor, "tenantA"), make_creds(store, ingestor, "tenantB")


def _get(http: httpx.Client, creds: Creds, target: str) -> httpx.Response:
    response = http.get(target, headers=creds.for_path("GET", target))
    check_answer(response, "isolation")
    return response


def _b_ids(http: httpx.Client, b: Creds) -> dict[str, list[str]]:
    """B's ids, read with B's own credentials (what A would have to guess)."""
    ids: dict[str, list[str]] = {}
    for kind in KINDS:
        page = _get(http, b, f"/api/v1/sessions?kind={kind}&{RANGE['native']}").json()
        ids[kind] = [str(s["session"]) for s in page["sessions"]]
        assert ids[kind], (kind, page)
    recent = _get(http, b, f"/v1/sessionRecent?{RANGE['vpe']}").json()["result"]
    ids["vpe"] = [r["uuid"] for r in recent]
    te = _get(http, b, f"/v6/endpoint-data/user-sessions?{RANGE['thousandeyes']}").json()
    ids["te"] = [s["userSessionId"] for s in te["userSessions"]]
    assert ids["vpe"] and ids["te"]
    assert b.label in _ekran_post(http, b).text
    return ids


def _ekran_post(http: httpx.Client, creds: Creds) -> httpx.Response:
    """Ekran's sessions with every field (the GET has fewer)."""
    body = {"start": "2025-10-09", "end": "2025-10-12"}
    response = http.post("/ekranapi/sessions", json=body, headers=creds.ekran())
    check_answer(response, "isolation")
    return response


@pytest.fixture(scope="module")
def dashboard_cookie(base_url: str, tenants: tuple[Creds, Creds]) -> Iterator[httpx.Client]:
    a, _ = tenants
    with httpx.Client(base_url=base_url, timeout=30) as client:
        signed = client.post("/login", data={"api_key": a.api_key}, headers={"Origin": base_url})
        assert signed.status_code == 303 and client.cookies, signed.text
        yield client


def test_a_never_sees_b(
    http: httpx.Client, tenants: tuple[Creds, Creds], dashboard_cookie: httpx.Client
) -> None:
    a, b = tenants
    ids = _b_ids(http, b)
    seen: list[tuple[str, httpx.Response]] = []

    def as_a(target: str, *, client: httpx.Client | None = None, found: bool = True) -> None:
        if client is None:
            response = _get(http, a, target)
        else:
            response = client.get(target)
            check_answer(response, "isolation")
        seen.append((target, response))
        if not found:
            assert 400 <= response.status_code < 500, (target, response.status_code)

    # Lists over B's time range: A's own data only.
    for kind in KINDS:
        as_a(f"/api/v1/sessions?kind={kind}&{RANGE['native']}")
        as_a(f"/api/v1/timeseries?kind={kind}&{RANGE['native']}")
        for session in ids[kind]:
            as_a(f"/api/v1/sessions/{kind}/{quote(session, safe='')}", found=False)
            as_a(
                f"/sessions/{kind}/{quote(session, safe='')}", client=dashboard_cookie, found=False
            )
            as_a(
                f"/projects/{b.project_id}/sessions/{kind}/{quote(session, safe='')}",
                client=dashboard_cookie,
                found=False,
            )
        as_a(f"/sessions?kind={kind}&{RANGE['native']}", client=dashboard_cookie)
    as_a("/", client=dashboard_cookie)
    as_a(f"/v1/sessionRecent?{RANGE['vpe']}")
    for chart in ("playCnt", "playTimeSum", "uniqUserCnt", "currentViewers"):
        as_a(f"/v1/charts/{chart}?{RANGE['vpe']}")
    for uuid in ids["vpe"]:
        as_a(f"/v1/sessionRecent/{uuid}", found=False)
    channel = f"ls-{b.label}"
    as_a(f"/api/v2/events?{RANGE['livestation']}")
    as_a(f"/api/v2/events?channelId={channel}&{RANGE['livestation']}")
    as_a(f"/api/v2/channels/{channel}/events", found=False)
    as_a(f"/api/v2/channels/{channel}/publish-log", found=False)
    as_a(f"/ekranapi/sessions?{RANGE['ekran']}")
    seen.append(("POST /ekranapi/sessions", _ekran_post(http, a)))
    as_a(f"/ekranapi/user/getproductivity?{RANGE['ekran']}")
    as_a(f"/v6/endpoint-data/user-sessions?{RANGE['thousandeyes']}")
    as_a(f"/v6/endpoint-data/user-sessions.xml?{RANGE['thousandeyes']}")
    for session in ids["te"]:
        as_a(f"/v6/endpoint-data/user-sessions/{quote(session, safe='')}", found=False)
    # B's account group named outright.
    as_a(f"/v6/endpoint-data/user-sessions?aid={b.project_id}&{RANGE['thousandeyes']}", found=False)
    echoed = [i for kind_ids in ids.values() for i in kind_ids] + [channel]
    for response_target, response in seen:
        text = response.text
        for asked in echoed:  # an error may name the id asked for: that is A's own input
            if asked in response_target or quote(asked, safe="") in response_target:
                text = text.replace(asked, "")
        assert b.label not in text, f"{response_target} leaked B's data: {text[:300]}"
    record("isolation", responses=len(seen), leaks=0)
    # A's own data is there (the queries above could see data at all).
    assert a.label in _ekran_post(http, a).text


def test_a_credentials_naming_b_are_refused(
    http: httpx.Client, tenants: tuple[Creds, Creds]
) -> None:
    a, b = tenants
    # NAVER VPE: A's key with B's project id.
    response = http.get(
        f"/v1/sessionRecent?{RANGE['vpe']}",
        headers={"x-api-key": a.api_key, "x-project-id": str(b.project_id)},
    )
    check_answer(response, "isolation")
    assert response.status_code in (401, 403) and b.label not in response.text
    # Live Station: B's access key signed with A's secret key.
    target = f"/api/v2/events?{RANGE['livestation']}"
    forged = Creds(b.project_id, "", b.access_key, a.secret_key, "", "")
    response = http.get(target, headers=forged.livestation("GET", target))
    check_answer(response, "isolation")
    assert response.status_code == 401 and b.label not in response.text
    # ThousandEyes: A's email with B's token, and the other way round.
    for email, token in ((a.te_email, b.te_token), (b.te_email, a.te_token)):
        mixed = Creds(0, "", "", "", email, token)
        response = http.get("/v6/endpoint-data/user-sessions", headers=mixed.thousandeyes())
        check_answer(response, "isolation")
        assert response.status_code == 401
