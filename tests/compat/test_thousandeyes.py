"""ThousandEyes v6 compatible API: endpoint user sessions, time ranges, paging, filters, XML,
account groups, users and tokens, per-organisation rate limits."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import Tenant, free_port
from tests.factories import endpoint
from typer.testing import CliRunner

from sessionscope.app import create_app
from sessionscope.cli import app as cli_app
from sessionscope.compat.thousandeyes import (
    PAGE_SIZE,
    OrganizationRateLimiter,
    round_id,
    user_session_id,
)
from sessionscope.config import Settings
from sessionscope.domain.events import validate_batch
from sessionscope.domain.network import PrefixTable
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore

LIST = "/v6/endpoint-data/user-sessions"
AGENT = "3fde6422-f119-40e1-ae32-d08a1243c038"
OTHER_AGENT = "9b1c4f7e-0000-4000-8000-00000000000b"
KEYS = [
    "agentId",
    "committed",
    "date",
    "experienceScore",
    "numberOfPages",
    "orgName",
    "pageId",
    "permalink",
    "port",
    "protocol",
    "roundId",
    "sourceAddr",
    "userSessionId",
    "visitedSite",
]
RATE_HEADERS = (
    "X-Organization-Rate-Limit-Limit",
    "X-Organization-Rate-Limit-Remaining",
    "X-Organization-Rate-Limit-Reset",
)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
T2 = "T-2 Access Network"

_emails = itertools.count(1)


@dataclass(frozen=True)
class TeUser:
    email: str
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.email, self.token)


def make_user(store: ClickHouseStore, *tenants: Tenant, organization: str = "") -> TeUser:
    email = f"te-{next(_emails)}-{time.monotonic_ns() % 10**9}@example.com"
    token = store.create_user(email, [t.project.id for t in tenants], organization)
    return TeUser(email, token)


@pytest.fixture
def user(store: ClickHouseStore, tenant: Tenant) -> TeUser:
    return make_user(store, tenant)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(http: httpx.Client, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.status_code == 200, r.text


def insert(store: ClickHouseStore, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    """Store many events at once (the same validation as the ingest API)."""
    valid, problems = validate_batch(events)
    assert not problems
    store.insert_events(tenant.project.id, valid)


def te(
    http: httpx.Client, who: TeUser, path: str = LIST + ".json", **params: Any
) -> httpx.Response:
    return http.get(path, params=params, auth=who.auth)


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def error(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["errorMessage"]
    message: str = body["errorMessage"]
    for word in words:
        assert word in message
    return message


def sites(body: dict[str, Any]) -> list[str]:
    return [s["visitedSite"] for s in body["userSessions"]]


def keys_of(body: dict[str, Any]) -> list[str]:
    return [s["permalink"].rsplit("/", 1)[1] for s in body["userSessions"]]


def page(at_: datetime, session: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("page_id", f"{session}-p1")
    return endpoint(at=at_, session=session, **kw)


# ------------------------------------------------------------------------------ golden


def golden_events() -> list[dict[str, Any]]:
    """The two user sessions of the vendor's example, as the endpoint agent reports them."""
    return [
        endpoint(
            at=at("2017-03-22 11:58:42"),
            session="golden-1",
            agent_id=AGENT,
            visited_site="thousandeyes.com",
            protocol="http",
            port=80,
            source_addr="84.255.241.1",
            org_name=T2,
            page_id="C31gBrYJ",
        ),
        endpoint(
            at=at("2017-03-22 11:58:43"),
            session="golden-2",
            agent_id=AGENT,
            visited_site="www.thousandeyes.com",
            protocol="https",
            port=443,
            source_addr="84.255.241.1",
            org_name=T2,
            page_id="iLUEN9t8",
        ),
    ]


def test_golden_sessions(
    http: httpx.Client, tenant: Tenant, user: TeUser, settings: Settings
) -> None:
    seed(http, tenant, golden_events())
    r = te(http, user, **{"from": "2017-03-22T11:58:00", "to": "2017-03-22T11:59:00"})
    body = ok(r)
    assert r.headers["cache-control"] == "no-store"
    assert list(body) == ["from", "to", "userSessions", "pages"]
    assert (body["from"], body["to"]) == ("2017-03-22 11:58:00", "2017-03-22 11:59:00")
    assert body["pages"] == {"current": 1}
    first, second = body["userSessions"]
    assert list(first) == KEYS and list(second) == KEYS
    aid = f"{tenant.project.id:05d}"
    for s, key in ((first, "golden-1"), (second, "golden-2")):
        assert DATE.match(s["committed"])
        assert re.fullmatch(rf"{aid}:1490183880:[0-9A-Za-z]{{8}}", s["userSessionId"])
        assert s["permalink"] == (
            f"{settings.base_url}/projects/{tenant.project.id}/sessions/endpoint/{key}"
        )
    assert {k: v for k, v in first.items() if k not in ("committed", "permalink")} == {
        "agentId": AGENT,
        "date": "2017-03-22 11:58:42",
        "experienceScore": 1.0,
        "numberOfPages": 1,
        "orgName": T2,
        "pageId": "C31gBrYJ",
        "port": 80,
        "protocol": "http",
        "roundId": 1490183880,
        "sourceAddr": "84.255.241.1",
        "userSessionId": first["userSessionId"],
        "visitedSite": "thousandeyes.com",
    }
    assert {k: v for k, v in second.items() if k not in ("committed", "permalink")} == {
        "agentId": AGENT,
        "date": "2017-03-22 11:58:43",
        "experienceScore": 1.0,
        "numberOfPages": 1,
        "orgName": T2,
        "pageId": "iLUEN9t8",
        "port": 443,
        "protocol": "https",
        "roundId": 1490183880,
        "sourceAddr": "84.255.241.1",
        "userSessionId": second["userSessionId"],
        "visitedSite": "www.thousandeyes.com",
    }
    assert first["userSessionId"] != second["userSessionId"]
    # Without a range: the last round, and no from/to.
    latest = ok(te(http, user))
    assert list(latest) == ["userSessions", "pages"]
    assert latest["userSessions"] == body["userSessions"]


def test_ids_are_stable_and_shaped() -> None:
    rid = round_id(at("2017-03-22 11:58:42.900"))
    assert rid == 1490183880
    a = user_session_id(7625, rid, "s-1")
    assert a == user_session_id(7625, rid, "s-1")
    assert re.fullmatch(r"07625:1490183880:[0-9A-Za-z]{8}", a)
    assert a != user_session_id(7625, rid, "s-2")
    assert a.split(":")[2] != user_session_id(7626, rid, "s-1").split(":")[2]
    assert user_session_id(123456, rid, "s-1").startswith("123456:")


def test_empty_account_group(http: httpx.Client, user: TeUser) -> None:
    assert ok(te(http, user)) == {"userSessions": [], "pages": {"current": 1}}
    body = ok(te(http, user, window="1h"))
    assert body["userSessions"] == [] and "from" in body and "next" not in body["pages"]


# ------------------------------------------------------------------------------ time ranges


def test_window_units(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    now = datetime.now(UTC)
    seed(
        http,
        tenant,
        [
            page(now - timedelta(minutes=30), "w-30m", visited_site="a.example"),
            page(now - timedelta(hours=2), "w-2h", visited_site="b.example"),
            page(now - timedelta(days=3), "w-3d", visited_site="c.example"),
        ],
    )
    expect = {
        "1h": {"w-30m"},
        "3600": {"w-30m"},
        "3600s": {"w-30m"},
        "60m": {"w-30m"},
        "1d": {"w-30m", "w-2h"},
        "4d": {"w-30m", "w-2h", "w-3d"},
        "1w": {"w-30m", "w-2h", "w-3d"},
    }
    for window, keys in expect.items():
        body = ok(te(http, user, window=window))
        assert set(keys_of(body)) == keys, window
        start, end = (datetime.fromisoformat(body[k]).replace(tzinfo=UTC) for k in ("from", "to"))
        seconds = {"h": 3600, "s": 1, "m": 60, "d": 86400, "w": 604800}.get(window[-1], 1)
        assert end - start == timedelta(seconds=int(window.rstrip("smhdw")) * seconds)
        assert abs(end - now) < timedelta(minutes=5)
    # Oldest first.
    assert keys_of(ok(te(http, user, window="1w"))) == ["w-3d", "w-2h", "w-30m"]


def test_from_to_inclusive_with_space_or_t(
    http: httpx.Client, tenant: Tenant, user: TeUser
) -> None:
    seed(
        http,
        tenant,
        [
            page(at("2025-10-10 09:00:00.000"), "r-a"),
            page(at("2025-10-10 09:30:00.500"), "r-b"),
            page(at("2025-10-10 10:00:00.999"), "r-c"),
            page(at("2025-10-10 10:00:01.000"), "r-d"),
        ],
    )
    both = {"from": "2025-10-10T09:00:00", "to": "2025-10-10 10:00:00"}
    body = ok(te(http, user, **both))
    assert keys_of(body) == ["r-a", "r-b", "r-c"]
    assert (body["from"], body["to"]) == ("2025-10-10 09:00:00", "2025-10-10 10:00:00")
    spaced = ok(te(http, user, **{"from": "2025-10-10 09:00:00", "to": "2025-10-10T10:00:00"}))
    assert keys_of(spaced) == ["r-a", "r-b", "r-c"]
    # `to` defaults to now.
    open_ended = ok(te(http, user, **{"from": "2025-10-10T09:30:01"}))
    assert keys_of(open_ended) == ["r-c", "r-d"]
    assert open_ended["from"] == "2025-10-10 09:30:01"
    to = datetime.fromisoformat(open_ended["to"]).replace(tzinfo=UTC)
    assert abs(to - datetime.now(UTC)) < timedelta(minutes=5)
    one_second = {"from": "2025-10-10T09:30:00", "to": "2025-10-10T09:30:00"}
    assert keys_of(ok(te(http, user, **one_second))) == ["r-b"]


def test_last_round_by_default(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    seed(
        http,
        tenant,
        [
            page(at("2025-10-10 09:00:10"), "lr-a", agent_id=OTHER_AGENT),
            page(at("2025-10-10 09:05:20"), "lr-b"),
            page(at("2025-10-10 09:05:59.900"), "lr-c"),
        ],
    )
    body = ok(te(http, user))
    assert list(body) == ["userSessions", "pages"]
    assert keys_of(body) == ["lr-b", "lr-c"]
    assert {s["roundId"] for s in body["userSessions"]} == {round_id(at("2025-10-10 09:05:00"))}
    # The round is the account group's newest, whatever the filters.
    filtered = http.post(
        LIST + ".json",
        json={"searchFilters": [{"key": "agentId", "values": [OTHER_AGENT]}]},
        auth=user.auth,
    )
    assert ok(filtered)["userSessions"] == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"window": "1h", "from": "2025-10-10T09:00:00"}, ["window", "from"]),
        ({"window": "1h", "to": "2025-10-10T09:00:00"}, ["window"]),
        ({"to": "2025-10-10T09:00:00"}, ["to", "from"]),
        ({"window": "1y"}, ["window"]),
        ({"window": "-5m"}, ["window"]),
        ({"window": "0"}, ["window"]),
        ({"window": "99999999999w"}, ["window"]),
        ({"window": ""}, ["window"]),
        ({"from": "2025-10-10"}, ["from", "YYYY-mm-ddTHH:MM:SS"]),
        ({"from": "2025-10-10T09:00"}, ["from"]),
        ({"from": "yesterday"}, ["from"]),
        ({"from": "2025-13-40T09:00:00"}, ["from"]),
        ({"from": "2025-10-10T09:00:00", "to": "2025-10-09T09:00:00"}, ["to", "before"]),
        ({"from": "2999-01-01T00:00:00"}, ["from", "future"]),
        # Outside 1970-01-01T00:00:00 .. 9998-12-31T23:59:59 (UTC).
        ({"from": "0001-01-01T00:00:00"}, ["from", "1970-01-01"]),
        ({"from": "0999-12-31 23:59:59"}, ["from"]),
        ({"from": "1969-12-31T23:59:59"}, ["from"]),
        ({"from": "2025-10-10T09:00:00", "to": "9999-12-31T23:59:59"}, ["to", "9998-12-31"]),
        # ASCII digits only.
        ({"from": "２０２５-10-10T09:00:00"}, ["from"]),
        ({"page": "２"}, ["page"]),
        ({"page": "0"}, ["page"]),
        ({"page": "x"}, ["page"]),
        ({"cursor": "not-a-cursor"}, ["cursor"]),
        ({"format": "yaml"}, ["format"]),
    ],
)
def test_bad_parameters(
    http: httpx.Client, user: TeUser, params: dict[str, str], words: list[str]
) -> None:
    r = te(http, user, LIST, **params)
    error(r, 400, *words)
    assert all(h in r.headers for h in RATE_HEADERS)


def test_the_range_of_times(
    http: httpx.Client, store: ClickHouseStore, tenant: Tenant, user: TeUser
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    insert(store, tenant, [page(now - timedelta(seconds=i), f"rt-{i:03d}") for i in range(120)])
    widest = {"from": "1970-01-01T00:00:00", "to": "9998-12-31T23:59:59"}
    body = ok(te(http, user, **widest))
    assert (body["from"], body["to"]) == ("1970-01-01 00:00:00", "9998-12-31 23:59:59")
    assert len(body["userSessions"]) == PAGE_SIZE
    rest = ok(http.get(body["pages"]["next"], auth=user.auth))
    assert len(rest["userSessions"]) == 20 and "next" not in rest["pages"]
    # A window reaching before 1970 starts there, and its next URL is accepted.
    longest = ok(te(http, user, window="36500d"))
    assert longest["from"] == "1970-01-01 00:00:00" and DATE.match(longest["to"])
    query = parse_qs(urlsplit(longest["pages"]["next"]).query)
    assert query["from"] == ["1970-01-01T00:00:00"]
    assert len(ok(http.get(longest["pages"]["next"], auth=user.auth))["userSessions"]) == 20


# ------------------------------------------------------------------------------ formats


def test_format_precedence(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    seed(http, tenant, golden_events())
    cases = [
        # (path, Accept, format=, expected)
        (LIST + ".xml", "application/json", "json", "xml"),
        (LIST + ".json", "application/xml", "xml", "json"),
        (LIST, "application/xml", "json", "xml"),
        (LIST, "text/xml", None, "xml"),
        (LIST, "application/json", "xml", "json"),
        (LIST, "application/json;q=0.5, application/xml", "json", "xml"),
        (LIST, "*/*", "xml", "xml"),
        (LIST, "text/html", "xml", "xml"),
        (LIST, "*/*", None, "json"),
    ]
    for path, accept, fmt, expected in cases:
        params = {"format": fmt} if fmt else {}
        r = http.get(path, params=params, headers={"Accept": accept}, auth=user.auth)
        assert r.status_code == 200, r.text
        media = r.headers["content-type"].split(";")[0]
        assert media == f"application/{expected}", (path, accept, fmt)
        if expected == "xml":
            assert ET.fromstring(r.content).tag == "data"
        else:
            assert "userSessions" in r.json()


def test_errors_follow_the_format(http: httpx.Client, user: TeUser) -> None:
    r = http.get(LIST + ".xml", params={"window": "soon"}, auth=user.auth)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "error" and [c.tag for c in root] == ["errorMessage"]
    assert "window" in (root[0].text or "")
    r = http.get(LIST, params={"window": "soon"}, headers={"Accept": "text/xml"}, auth=user.auth)
    assert ET.fromstring(r.content).tag == "error"
    error(http.get(LIST + ".json", params={"window": "soon", "format": "xml"}), 401)


def xml_data(element: ET.Element) -> Any:
    """Read an answer's XML back into JSON-like data (every value as text, empty as None)."""
    children = list(element)
    if element.tag in ("userSessions",) or (
        element.tag == "pages" and children and children[0].tag == "page"
    ):
        return [xml_data(c) for c in children]
    if children:
        return {c.tag: xml_data(c) for c in children}
    if element.tag == "pages":
        return []
    return element.text


def as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if value is None or value == "":
        return None
    return str(value)


def test_xml_reads_back_as_json(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    tricky = "Tom & Jerry <script>alert(\"x\")</script> 'quoted' ü ✓"
    seed(
        http,
        tenant,
        [
            page(at("2025-10-10 09:00:01"), "x-1", org_name=tricky, title=tricky),
            page(at("2025-10-10 09:00:02"), "x-2", visited_site="ü.example", org_name="A&B"),
            page(at("2025-10-10 09:00:03"), "a/b c&d?e", org_name="<none>"),
        ],
    )
    params = {"from": "2025-10-10T09:00:00", "to": "2025-10-10T09:01:00"}
    as_json = ok(te(http, user, **params))
    r = te(http, user, LIST + ".xml", **params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.content.startswith(b"<?xml")
    root = ET.fromstring(r.content)
    assert root.tag == "data"
    assert [c.tag for c in root] == ["from", "to", "userSessions", "pages"]
    assert all(c.tag == "userSession" for c in root.find("userSessions") or [])
    assert xml_data(root) == as_text(as_json)
    assert as_json["userSessions"][0]["orgName"] == tricky
    # One session in detail, with its pages, both ways.
    sid = as_json["userSessions"][0]["userSessionId"]
    detail_json = ok(te(http, user, f"{LIST}/{sid}.json"))
    detail_xml = ET.fromstring(te(http, user, f"{LIST}/{sid}.xml").content)
    assert xml_data(detail_xml) == as_text(detail_json)
    assert detail_json["userSessions"][0]["pages"][0]["title"] == tricky


# ------------------------------------------------------------------------------ detail


def test_session_detail(
    http: httpx.Client, tenant: Tenant, user: TeUser, store: ClickHouseStore
) -> None:
    start = at("2025-10-10 09:00:05.250")
    seed(
        http,
        tenant,
        [
            page(start, "d-1", page_id="home", title="Home", on_load_ms=1500),
            page(
                start + timedelta(seconds=20),
                "d-1",
                page_id="cart",
                title="Cart",
                on_load_ms=5000,
                on_content_load_ms=None,
            ),
            page(start + timedelta(seconds=40), "d-1", page_id="pay", response_code=503),
            page(start + timedelta(seconds=50), "d-2"),
        ],
    )
    listed = ok(te(http, user, **{"from": "2025-10-10T09:00:00", "to": "2025-10-10T09:01:00"}))
    first = listed["userSessions"][0]
    assert first["numberOfPages"] == 3 and first["pageId"] == "home"
    assert first["experienceScore"] == 0.5  # (1 + 0.5 + 0) / 3 rounded
    sid = first["userSessionId"]
    for path in (f"{LIST}/{sid}", f"{LIST}/{sid}.json"):
        body = ok(te(http, user, path))
        assert list(body) == ["userSessions"]
        (s,) = body["userSessions"]
        assert list(s) == [*KEYS[:7], "pages", *KEYS[7:]]
        assert {k: v for k, v in s.items() if k != "pages"} == first
        assert s["pages"] == [
            {
                "id": "home",
                "title": "Home",
                "startedDateTime": "2025-10-10T09:00:05.250Z",
                "responseCode": 200,
                "pageTimings": {"onContentLoad": 800, "onLoad": 1500},
            },
            {
                "id": "cart",
                "title": "Cart",
                "startedDateTime": "2025-10-10T09:00:25.250Z",
                "responseCode": 200,
                "pageTimings": {"onContentLoad": None, "onLoad": 5000},
            },
            {
                "id": "pay",
                "title": "Home",
                "startedDateTime": "2025-10-10T09:00:45.250Z",
                "responseCode": 503,
                "pageTimings": {"onContentLoad": 800, "onLoad": 1500},
            },
        ]
    # With the right aid, too.
    ok(te(http, user, f"{LIST}/{sid}", aid=str(tenant.project.id)))
    aid, rid, code = sid.split(":")
    missing = "0" if code[0] != "0" else "1"
    error(te(http, user, f"{LIST}/{aid}:{rid}:{missing}{code[1:]}"), 404, "userSessionId")
    error(te(http, user, f"{LIST}/{aid}:{int(rid) + 60}:{code}"), 404, "userSessionId")
    error(te(http, user, f"{LIST}/nonsense"), 400, "userSessionId")
    # roundIds that no instant from 1970 to 9998 floors to: a 400, never a 500.
    for bad in ("999999999999", "253402300799", "253370764800"):
        for prefix in ("00003", aid):
            r = te(http, user, f"{LIST}/{prefix}:{bad}:zToPodJD")
            error(r, 400, "userSessionId", "roundId")
            assert all(h in r.headers for h in RATE_HEADERS)
    r = te(http, user, f"{LIST}/{aid}:999999999999:zToPodJD.xml")
    assert r.status_code == 400 and ET.fromstring(r.content).tag == "error"
    # The first and the last round of the range are looked up (and not found) like any other.
    error(te(http, user, f"{LIST}/{aid}:253370764740:zToPodJD"), 404, "userSessionId")
    error(te(http, user, f"{LIST}/{aid}:0:zToPodJD"), 404, "userSessionId")
    # Another account group's prefix: the user is not in it.
    stranger = store.create_project(f"te-stranger-{time.monotonic_ns()}")
    error(te(http, user, f"{LIST}/{stranger.id:05d}:{rid}:{code}"), 403, "aid")


# ------------------------------------------------------------------------------ filters


def filter_events() -> list[dict[str, Any]]:
    base = at("2025-10-10 09:00:00")
    rows = [
        ("f1", AGENT, "www.example.com", "https", 443, "10.0.0.1"),
        ("f2", AGENT, "example.com", "http", 80, "10.0.0.2"),
        ("f3", OTHER_AGENT, "shop.example.com", "https", 8443, "10.0.0.1"),
        ("f4", OTHER_AGENT, "notexample.com", "https", 443, "10.0.0.3"),
    ]
    return [
        page(
            base + timedelta(seconds=i),
            key,
            agent_id=agent,
            visited_site=site,
            protocol=proto,
            port=port,
            source_addr=addr,
        )
        for i, (key, agent, site, proto, port, addr) in enumerate(rows)
    ]


RANGE = {"from": "2025-10-10T09:00:00", "to": "2025-10-10T09:01:00"}


def search(http: httpx.Client, who: TeUser, *filters: tuple[str, list[Any]]) -> httpx.Response:
    body = {"searchFilters": [{"key": k, "values": v} for k, v in filters]}
    return http.post(LIST + ".json", params=RANGE, json=body, auth=who.auth)


def test_filters(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    seed(http, tenant, filter_events())
    cases: list[tuple[list[tuple[str, list[Any]]], list[str]]] = [
        ([], ["f1", "f2", "f3", "f4"]),
        ([("agentId", [AGENT])], ["f1", "f2"]),
        ([("agentId", [AGENT, OTHER_AGENT]), ("protocol", ["HTTPS"])], ["f1", "f3", "f4"]),
        ([("domain", ["example.com"])], ["f1", "f2", "f3"]),
        ([("domain", ["EXAMPLE.com"]), ("port", [443])], ["f1"]),
        ([("domain", ["shop.example.com", "notexample.com"])], ["f3", "f4"]),
        ([("port", [8443, "80"])], ["f2", "f3"]),
        ([("sourceAddr", ["10.0.0.1"]), ("agentId", [OTHER_AGENT])], ["f3"]),
        ([("visitedSite", ["www.example.com"])], ["f1"]),
        ([("agentId", [AGENT]), ("agentId", [AGENT, OTHER_AGENT])], ["f1", "f2"]),
        ([("agentId", [AGENT]), ("agentId", [OTHER_AGENT])], []),
        ([("visitedSite", ["nowhere.example"])], []),
    ]
    for filters, expected in cases:
        assert keys_of(ok(search(http, user, *filters))) == expected, filters
    # The same filters as a parameter (what a next-page URL carries), on GET.
    doc = '[{"key":"agentId","values":["' + AGENT + '"]}]'
    assert keys_of(ok(te(http, user, searchFilters=doc, **RANGE))) == ["f1", "f2"]
    # A body re-sent to a next-page URL with the same filters changes nothing; other filters
    # in the body and the URL are ANDed.
    domain = [{"key": "domain", "values": ["example.com"]}]
    again = {**RANGE, "searchFilters": json.dumps(domain)}
    resent = http.post(LIST, params=again, json={"searchFilters": domain}, auth=user.auth)
    assert keys_of(ok(resent)) == ["f1", "f2", "f3"]
    body = {"searchFilters": [{"key": "protocol", "values": ["https"]}]}
    anded = http.post(LIST, params=again, json=body, auth=user.auth)
    assert keys_of(ok(anded)) == ["f1", "f3"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"searchFilters": [{"key": "browser", "values": ["x"]}]}, ["browser", "agentId"]),
        ({"searchFilters": [{"key": "platform", "values": ["x"]}]}, ["platform"]),
        ({"searchFilters": [{"key": "agentId", "values": "x"}]}, ["agentId", "array"]),
        ({"searchFilters": [{"key": "agentId", "values": []}]}, ["agentId"]),
        ({"searchFilters": [{"key": "agentId", "values": [None]}]}, ["agentId"]),
        ({"searchFilters": [{"key": "port", "values": ["http"]}]}, ["port"]),
        ({"searchFilters": [{"key": "agentId"}]}, ["searchFilters"]),
        ({"searchFilters": {"agentId": ["x"]}}, ["searchFilters"]),
        ({"filters": []}, ["filters"]),
        (
            {
                "searchFilters": [
                    {"key": "domain", "values": ["a.example"]},
                    {"key": "domain", "values": ["b.example"]},
                ]
            },
            ["domain"],
        ),
    ],
)
def test_bad_filters(
    http: httpx.Client, user: TeUser, body: dict[str, Any], words: list[str]
) -> None:
    error(http.post(LIST, params=RANGE, json=body, auth=user.auth), 400, *words)


def test_body_must_be_json(http: httpx.Client, user: TeUser) -> None:
    r = http.post(LIST, params=RANGE, content=b"{nope", auth=user.auth)
    error(r, 400, "body")
    assert ok(http.post(LIST, params=RANGE, content=b"", auth=user.auth))["userSessions"] == []
    huge = b'{"searchFilters": [' + b" " * 100_000 + b"]}"
    error(http.post(LIST, params=RANGE, content=huge, auth=user.auth), 400, "body")


# ------------------------------------------------------------------------------ paging


def walk(http: httpx.Client, who: TeUser, first: httpx.Response) -> Iterator[dict[str, Any]]:
    """Yield every page, following pages.next as a client would (GET, same credentials)."""
    body = ok(first)
    yield body
    while "next" in body["pages"]:
        body = ok(http.get(body["pages"]["next"], auth=who.auth))
        yield body


def test_paging_walk_sees_every_session_once(
    http: httpx.Client, store: ClickHouseStore, tenant: Tenant, user: TeUser
) -> None:
    base = at("2025-10-11 00:00:00")
    # 3,000 sessions, three to a second (ties broken by session key), stored in three batches.
    keys = [f"walk-{(i * 7919) % 3000:04d}" for i in range(3000)]
    events = [page(base + timedelta(seconds=i // 3), key) for i, key in enumerate(keys)]
    for chunk in range(3):
        insert(store, tenant, events[chunk * 1000 : (chunk + 1) * 1000])
    params = {"from": "2025-10-11T00:00:00", "to": "2025-10-11T01:00:00"}
    seen: list[str] = []
    added: list[str] = []
    pages = 0
    for body in walk(http, user, te(http, user, **params)):
        pages += 1
        assert body["pages"]["current"] == pages
        assert (body["from"], body["to"]) == ("2025-10-11 00:00:00", "2025-10-11 01:00:00")
        assert len(body["userSessions"]) <= PAGE_SIZE
        seen += keys_of(body)
        if pages == 3:
            # New sessions arrive mid-walk: before and after the walk's position.
            late = [
                page(base + timedelta(seconds=s, milliseconds=500), f"late-{s:04d}")
                for s in range(0, 1000, 5)
            ]
            added = [e["session"] for e in late]
            insert(store, tenant, late)
        if "next" in body["pages"]:
            query = parse_qs(urlsplit(body["pages"]["next"]).query)
            assert query["from"] == ["2025-10-11T00:00:00"]
            assert query["to"] == ["2025-10-11T01:00:00"]
            assert query["aid"] == [str(tenant.project.id)]
    assert len(seen) == len(set(seen)), "a session came twice"
    assert set(keys) <= set(seen)
    assert set(seen) - set(keys) <= set(added)
    # The first three pages covered 300 sessions, three to a second: the sessions stored
    # after that position were all seen, those before it were not.
    position = 3 * PAGE_SIZE // 3
    assert {k for k in added if int(k[5:]) >= position} <= set(seen)
    assert not {k for k in added if int(k[5:]) < position} & set(seen)
    assert pages >= 3000 // PAGE_SIZE


def test_next_keeps_window_filters_and_format(
    http: httpx.Client, store: ClickHouseStore, tenant: Tenant, user: TeUser
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    events = [
        page(now - timedelta(seconds=i), f"nk-{i:03d}", agent_id=AGENT if i % 5 else OTHER_AGENT)
        for i in range(250)
    ]
    insert(store, tenant, events)
    body = {"searchFilters": [{"key": "agentId", "values": [AGENT]}]}
    first = http.post(LIST, params={"window": "1h", "format": "xml"}, json=body, auth=user.auth)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(first.content)
    nxt = root.findtext("pages/next")
    assert nxt is not None and nxt.startswith("http")
    query = parse_qs(urlsplit(nxt).query)
    assert "window" not in query
    assert query["from"] == [root.findtext("from", "").replace(" ", "T")]
    assert query["to"] == [root.findtext("to", "").replace(" ", "T")]
    assert query["format"] == ["xml"]
    assert "agentId" in query["searchFilters"][0]
    total = len(root.findall("userSessions/userSession"))
    pages = 1
    while nxt:
        r = http.get(nxt, auth=user.auth)
        assert r.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(r.content)
        pages += 1
        assert root.findtext("pages/current") == str(pages)
        agents = {a.text for a in root.findall("userSessions/userSession/agentId")}
        assert agents == {AGENT}
        total += len(root.findall("userSessions/userSession"))
        nxt = root.findtext("pages/next")
    assert total == 200 and pages == 2
    # A suffix stays in the path and needs no format parameter.
    r = ok(http.get(LIST + ".json", params={"window": "1h"}, auth=user.auth))
    url = urlsplit(r["pages"]["next"])
    assert url.path == LIST + ".json" and "format" not in parse_qs(url.query)
    # The deprecated page= still works (the same second page, nothing arriving meanwhile).
    second = ok(http.get(r["pages"]["next"], auth=user.auth))
    by_page = ok(
        http.get(
            LIST + ".json",
            params={"from": r["from"], "to": r["to"], "page": "2"},
            auth=user.auth,
        )
    )
    assert keys_of(by_page) == keys_of(second) and by_page["pages"]["current"] == 2


# ------------------------------------------------------------------------------ account groups


def test_account_groups(
    http: httpx.Client,
    store: ClickHouseStore,
    new_project: Callable[[], Tenant],
) -> None:
    one, two, other = new_project(), new_project(), new_project()
    for t, site in ((one, "one.example"), (two, "two.example"), (other, "other.example")):
        seed(http, t, [page(at("2025-10-10 09:00:00"), f"ag-{site}", visited_site=site)])
    who = make_user(store, one, two)
    assert sites(ok(te(http, who))) == ["one.example"]
    assert sites(ok(te(http, who, aid=str(two.project.id)))) == ["two.example"]
    body = ok(te(http, who, aid=str(two.project.id)))
    assert body["userSessions"][0]["userSessionId"].startswith(f"{two.project.id:05d}:")
    error(te(http, who, aid="abc"), 400, "aid")
    error(te(http, who, aid="-1"), 400, "aid")
    error(te(http, who, aid="4000000000"), 400, "aid")
    error(te(http, who, aid="99999999"), 400, "aid")
    error(te(http, who, aid=str(other.project.id)), 403, "aid")


def test_authentication(http: httpx.Client, tenant: Tenant, user: TeUser) -> None:
    seed(http, tenant, golden_events())
    r = http.get(LIST + ".json")
    error(r, 401, "Authorization")
    assert all(h in r.headers for h in RATE_HEADERS)
    assert r.headers["www-authenticate"].startswith("Basic")
    error(http.get(LIST, auth=(user.email, "wrong")), 401)
    error(http.get(LIST, auth=("nobody@example.com", user.token)), 401)
    error(http.get(LIST, headers={"Authorization": "Basic !!!"}), 401, "base64")
    error(http.get(LIST, headers={"Authorization": "Bearer nope"}), 401)
    error(http.get(LIST, headers={"Authorization": f"Bearer {tenant.api_key}"}), 401)
    bearer = http.get(LIST + ".json", headers={"Authorization": f"Bearer {user.token}"})
    assert len(ok(bearer)["userSessions"]) == 2
    upper = http.get(LIST + ".json", auth=(user.email.upper(), user.token))
    assert len(ok(upper)["userSessions"]) == 2


def test_unknown_paths_and_methods(http: httpx.Client, user: TeUser) -> None:
    r = http.get("/v6/agents.json", auth=user.auth)
    error(r, 404, "/v6/agents.json")
    assert all(h in r.headers for h in RATE_HEADERS)
    r = http.delete(LIST, auth=user.auth)
    error(r, 405)
    assert r.headers["allow"] == "GET, POST"
    error(http.post(f"{LIST}/00001:1490183880:abcdefgh", auth=user.auth), 405)
    error(http.get("/v6/agents.json"), 401)
    # HEAD and OPTIONS too: 405 saying what is allowed, with the rate-limit headers.
    for method in ("HEAD", "OPTIONS"):
        for path, allowed in (
            (LIST, "GET, POST"),
            (LIST + ".json", "GET, POST"),
            (LIST + ".xml", "GET, POST"),
            (f"{LIST}/00001:1490183880:abcdefgh", "GET"),
        ):
            r = http.request(method, path, auth=user.auth)
            assert (r.status_code, r.headers["allow"]) == (405, allowed), (method, path)
            assert all(h in r.headers for h in RATE_HEADERS), (method, path)
            if method == "OPTIONS" and not path.endswith(".xml"):
                error(r, 405, method)
        r = http.request(method, "/v6/agents.json", auth=user.auth)
        assert r.status_code == 404 and all(h in r.headers for h in RATE_HEADERS)
        r = http.request(method, LIST)
        assert r.status_code == 401 and all(h in r.headers for h in RATE_HEADERS)


def test_users_create_cli_token_works(
    http: httpx.Client, settings: Settings, tenant: Tenant
) -> None:
    seed(http, tenant, golden_events())
    result = CliRunner().invoke(
        cli_app,
        [
            "users",
            "create",
            f"Cli-{time.monotonic_ns()}@Example.com",
            "--project",
            tenant.project.name,
            "--json",
            "--data-dir",
            str(settings.data_dir),
        ],
        env={"SESSIONSCOPE_SECRET_KEY": settings.secret_key},
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["project_ids"] == [tenant.project.id] and out["email"] == out["email"].lower()
    body = ok(http.get(LIST + ".json", auth=(out["email"], out["token"])))
    assert sites(body) == ["thousandeyes.com", "www.thousandeyes.com"]


# ------------------------------------------------------------------------------ rate limits


@pytest.fixture(scope="module")
def limited_url(settings: Settings, store: ClickHouseStore, ingestor: Ingestor) -> Iterator[str]:
    """An app with a limit of 3 requests a minute and an address-prefix table, served."""
    limited = dataclasses.replace(
        settings,
        extra={**settings.extra, "rate_limit_per_minute": 3},
        org_prefixes={"84.255.240.0/20": T2, "84.255.241.0/24": "T-2 Ljubljana", "bad": "x"},
    )
    config = uvicorn.Config(
        create_app(limited, store=store, ingestor=ingestor),
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "limited server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def rate(r: httpx.Response) -> tuple[int, int, int]:
    limit, remaining, reset = (int(r.headers[h]) for h in RATE_HEADERS)
    return limit, remaining, reset


def cli_project(settings: Settings, store: ClickHouseStore, *options: str) -> Tenant:
    """A project made with ``sessionscope projects create`` (and its options)."""
    name = f"te-cli-{time.monotonic_ns()}"
    result = CliRunner().invoke(
        cli_app,
        ["projects", "create", name, *options, "--json", "--data-dir", str(settings.data_dir)],
        env={"SESSIONSCOPE_SECRET_KEY": settings.secret_key},
    )
    assert result.exit_code == 0, result.output
    project = store.get_project(json.loads(result.stdout)["id"])
    assert project is not None
    return Tenant(project, "")


def test_rate_limit_per_organization(
    limited_url: str,
    settings: Settings,
    store: ClickHouseStore,
    new_project: Callable[[], Tenant],
) -> None:
    org = f"acme-{time.monotonic_ns()}"
    one = cli_project(settings, store, "--organization", org)
    two = cli_project(settings, store, "--organization", org)
    assert one.project.organization == two.project.organization == org
    solo = new_project()  # no organisation: an organisation of its own
    alice = make_user(store, one)
    bob = make_user(store, two, solo)
    carol = make_user(store, solo, organization=org)  # a user's own organisation is not used
    with httpx.Client(base_url=limited_url, timeout=30) as client:
        before = int(time.time())
        answers = [
            client.get(LIST + ".json", auth=alice.auth),
            client.get(LIST + ".json", params={"window": "bad"}, auth=bob.auth),
            client.get(LIST + ".xml", params={"aid": str(one.project.id)}, auth=bob.auth),
        ]
        # Every user and every account group of the organisation share its budget.
        assert [r.status_code for r in answers] == [200, 400, 403]
        assert [rate(r)[:2] for r in answers] == [(3, 2), (3, 1), (3, 0)]
        resets = {rate(r)[2] for r in answers}
        assert len(resets) == 1 and before < resets.pop() <= before + 62
        over = client.get(LIST + ".json", auth=bob.auth)
        error(over, 429, "rate limit")
        assert rate(over)[:2] == (3, 0) and int(over.headers["retry-after"]) >= 1
        over_xml = client.get(LIST + ".xml", auth=alice.auth)
        assert over_xml.status_code == 429
        assert ET.fromstring(over_xml.content).tag == "error"
        # The budget is the one of the account group asked about: bob asking for solo uses
        # solo's, which carol shares (the same account group), whatever her own organisation.
        fresh = client.get(LIST + ".json", params={"aid": str(solo.project.id)}, auth=bob.auth)
        assert fresh.status_code == 200 and rate(fresh)[:2] == (3, 2)
        shared = client.get(LIST + ".json", auth=carol.auth)
        assert shared.status_code == 200 and rate(shared)[:2] == (3, 1)


def test_refused_requests_count_against_the_default_account_group(
    limited_url: str, settings: Settings, store: ClickHouseStore
) -> None:
    x = cli_project(settings, store, "--organization", f"x-{time.monotonic_ns()}")
    y = cli_project(settings, store)  # without --organization: its own
    assert y.project.organization == ""
    dave, eve = make_user(store, x), make_user(store, y)
    with httpx.Client(base_url=limited_url, timeout=30) as client:
        # An account group dave is not in (403), none at all (400), a malformed id (400):
        # counted against dave's own organisation, never against the one he asked about.
        refused = [
            client.get(LIST + ".json", params={"aid": str(y.project.id)}, auth=dave.auth),
            client.get(LIST + ".json", params={"aid": "99999999"}, auth=dave.auth),
            client.get(f"{LIST}/nonsense", auth=dave.auth),
        ]
        assert [r.status_code for r in refused] == [403, 400, 400]
        assert [rate(r)[:2] for r in refused] == [(3, 2), (3, 1), (3, 0)]
        untouched = client.get(LIST + ".json", auth=eve.auth)
        assert untouched.status_code == 200 and rate(untouched)[:2] == (3, 2)
        # Unknown paths and other methods count against the default account group too.
        assert client.get("/v6/agents.json", auth=eve.auth).status_code == 404
        assert rate(client.head(LIST, auth=eve.auth))[:2] == (3, 0)


def test_rate_limiter_windows() -> None:
    now = [1000.0]
    limiter = OrganizationRateLimiter(clock=lambda: now[0])
    key = ("organization", "acme")
    decisions = [limiter.hit(key, 2) for _ in range(3)]
    assert [(d.allowed, d.remaining, d.reset) for d in decisions] == [
        (True, 1, 1060),
        (True, 0, 1060),
        (False, 0, 1060),
    ]
    now[0] = 1059.9
    assert not limiter.hit(key, 2).allowed
    now[0] = 1060.0  # a new window opens at the first request after the old one ends
    d = limiter.hit(key, 2)
    assert (d.allowed, d.remaining, d.reset) == (True, 1, 1120)
    now[0] = 1200.5
    # At most a minute after the answer's Date (whole seconds: 1200), never 61 s.
    assert limiter.hit(key, 2).reset == 1260
    assert limiter.hit(("organization", "other"), 2).remaining == 1


@given(st.floats(min_value=1e9, max_value=4e9), st.floats(min_value=0, max_value=200))
def test_rate_limit_reset_is_within_a_minute_of_the_date(start: float, later: float) -> None:
    """Clients take a reset 60 s or more after ``Date`` for a bad value: it never is more."""
    now = [start]
    limiter = OrganizationRateLimiter(clock=lambda: now[0])
    limiter.hit(("organization", "acme"), 5)
    now[0] = start + later
    reset = limiter.hit(("organization", "acme"), 5).reset
    assert 0 < reset - int(now[0]) <= 60


def test_org_name_from_address_prefixes(
    limited_url: str, store: ClickHouseStore, tenant: Tenant
) -> None:
    when = at("2025-10-10 09:00:00")
    insert(
        store,
        tenant,
        [
            page(when, "o-1", source_addr="84.255.241.9"),  # the more specific prefix
            page(when, "o-2", source_addr="84.255.250.1"),
            page(when, "o-3", source_addr="84.255.241.9", org_name="Own ISP"),
            page(when, "o-4", source_addr="192.0.2.1"),
        ],
    )
    who = make_user(store, tenant)
    with httpx.Client(base_url=limited_url, timeout=30) as client:
        body = ok(client.get(LIST + ".json", auth=who.auth))
    names = {s["permalink"].rsplit("/", 1)[1]: s["orgName"] for s in body["userSessions"]}
    assert names == {"o-1": "T-2 Ljubljana", "o-2": T2, "o-3": "Own ISP", "o-4": ""}


def test_prefix_table() -> None:
    table = PrefixTable.parse(
        {"10.0.0.0/8": "ten", "10.1.0.0/16": "ten-one", "2001:db8::/32": "v6"}
    )
    assert table.lookup("10.1.2.3") == "ten-one"
    assert table.lookup("10.2.0.1") == "ten"
    assert table.lookup("2001:db8::1") == "v6"
    assert table.lookup("11.0.0.1") == ""
    assert table.lookup("not an address") == ""
    assert PrefixTable.parse({"nope": "x"}).invalid == ("nope",)
