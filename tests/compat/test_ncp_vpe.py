"""NAVER Cloud Video Player Enhancement compatible API: sessionRecent, session detail, charts."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.conftest import Tenant
from tests.factories import iso, player

from sessionscope.compat.ncp_vpe import mask_uuid, session_no, video_time
from sessionscope.simulate import SimulationConfig, simulate

UUID = "ad5aea06-fb78-41c7-b2ad-716b685e32db"
MASKED = "ad5aea06-****-****-****-716b685e32db"
OTHER = "11111111-2222-3333-4444-555555555555"
ORIGIN = "https://mediaplus-demo.web.app"
OS = "Mac OS / 10.15.7 ↑"

LIST_KEYS = [
    "logDate",
    "no",
    "uuid",
    "origin",
    "os",
    "device",
    "totalStartTime",
    "rebufferingTime",
    "playingTime",
    "isError",
    "sessionLog",
]
LOG_KEYS = ["logDate", "videoTime", "actionType", "actionDuration", "uuid"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(http: httpx.Client, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.status_code == 200, r.text


def vpe(tenant: Tenant) -> dict[str, str]:
    return {"x-api-key": tenant.api_key, "x-project-id": str(tenant.project.id)}


def get(http: httpx.Client, tenant: Tenant, path: str, **params: Any) -> httpx.Response:
    return http.get(path, params=params, headers=vpe(tenant))


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert type(body["code"]) is int and body["code"] == 200
    return body


def recent(http: httpx.Client, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("startDate", "2025-10-01")
    params.setdefault("endDate", "2025-10-31")
    result: list[dict[str, Any]] = ok(get(http, tenant, "/v1/sessionRecent", **params))["result"]
    return result


def golden_events(session: str = "golden") -> list[dict[str, Any]]:
    """The six sessionLog entries of the vendor's example, as the player would send them."""
    rows = [
        ("player_start", "2025-10-10 09:49:46.120", 5, 0),
        ("startup", "2025-10-10 09:49:46.480", 352, 0),
        ("playing", "2025-10-10 09:50:16.537", 30057, 30),
        ("startup", "2025-10-10 09:54:23.210", 239, 0),
        ("playing", "2025-10-10 09:54:38.188", 14978, 15.4),
        # Same instant as the playing report: arrival order keeps it last.
        ("ended", "2025-10-10 09:54:38.188", 0, 15.4),
    ]
    return [
        player(
            etype,
            at=at(t),
            session=session,
            user=UUID,
            origin=ORIGIN,
            os=OS,
            device="PC",
            video_type="VOD",
            duration_ms=duration,
            video_time=position,
        )
        for etype, t, duration, position in rows
    ]


# ------------------------------------------------------------------------------ sessionRecent


def test_golden_session(http: httpx.Client, tenant: Tenant) -> None:
    seed(http, tenant, golden_events())
    r = get(http, tenant, "/v1/sessionRecent", startDate="2025-10-10", endDate="2025-10-10")
    body = ok(r)
    assert list(body) == ["code", "message", "result"]
    assert body["message"] == "sessionRecent (1d)"
    assert len(body["result"]) == 1
    s = body["result"][0]
    assert list(s) == LIST_KEYS
    assert isinstance(s["no"], str) and s["no"].isdigit() and int(s["no"]) > 0
    assert s["no"] == str(session_no(tenant.project.id, "golden"))
    assert {k: v for k, v in s.items() if k not in ("no", "sessionLog")} == {
        "logDate": "2025-10-10 09:54:38",
        "uuid": UUID,
        "origin": ORIGIN,
        "os": OS,
        "device": "PC",
        # Sums of the six entries by the definitions: (5 + 352 + 239) / 1000, none,
        # (30057 + 14978) / 1000.
        "totalStartTime": 0.596,
        "rebufferingTime": 0.0,
        "playingTime": 45.035,
        "isError": False,
    }
    assert all(list(e) == LOG_KEYS for e in s["sessionLog"])
    assert s["sessionLog"] == [
        {
            "logDate": "2025-10-10 09:49:46",
            "videoTime": "00:00:00",
            "actionType": "player_start",
            "actionDuration": 5,
            "uuid": MASKED,
        },
        {
            "logDate": "2025-10-10 09:49:46",
            "videoTime": "00:00:00",
            "actionType": "startup",
            "actionDuration": 352,
            "uuid": MASKED,
        },
        {
            "logDate": "2025-10-10 09:50:16",
            "videoTime": "00:00:30",
            "actionType": "playing",
            "actionDuration": 30057,
            "uuid": MASKED,
        },
        {
            "logDate": "2025-10-10 09:54:23",
            "videoTime": "00:00:00",
            "actionType": "startup",
            "actionDuration": 239,
            "uuid": MASKED,
        },
        {
            "logDate": "2025-10-10 09:54:38",
            "videoTime": "00:00:15",
            "actionType": "playing",
            "actionDuration": 14978,
            "uuid": MASKED,
        },
        {
            "logDate": "2025-10-10 09:54:38",
            "videoTime": "00:00:15",
            "actionType": "ended",
            "actionDuration": 0,
            "uuid": MASKED,
        },
    ]
    # Resending the batch stores nothing twice: the log and the sums stay the same.
    seed(http, tenant, golden_events())
    again = ok(get(http, tenant, "/v1/sessionRecent", startDate="2025-10-10", endDate="2025-10-10"))
    assert again["result"] == body["result"]


def test_formatting_helpers() -> None:
    assert mask_uuid(UUID) == MASKED
    assert video_time(0) == "00:00:00"
    assert video_time(30.9) == "00:00:30"
    assert video_time(3 * 3600 + 62) == "03:01:02"
    assert video_time(None) == "00:00:00"


def test_no_is_stable_and_distinct(
    http: httpx.Client, tenant: Tenant, new_project: Callable[[], Tenant]
) -> None:
    seed(http, tenant, golden_events("a") + golden_events("b"))
    first = {s["no"] for s in recent(http, tenant)}
    second = {s["no"] for s in recent(http, tenant, limit=1)} | {
        s["no"] for s in recent(http, tenant)
    }
    assert len(first) == 2 and first == second
    assert first == {str(session_no(tenant.project.id, k)) for k in ("a", "b")}
    other = new_project()
    seed(http, other, golden_events("a"))
    assert recent(http, other)[0]["no"] not in first  # numbered per project


def test_most_recent_last_event_first_and_limit(http: httpx.Client, tenant: Tenant) -> None:
    base = at("2025-10-10 08:00:00")
    events = [
        player("startup", at=base + timedelta(minutes=i), session=f"s{i}", duration_ms=100)
        for i in range(5)
    ]
    # The oldest session to start is the last to end: it is the most recent session.
    events.append(player("playing", at=base + timedelta(hours=2), session="s0", duration_ms=9))
    seed(http, tenant, events)
    result = recent(http, tenant)
    assert [s["logDate"] for s in result] == [
        "2025-10-10 10:00:00",
        "2025-10-10 08:04:00",
        "2025-10-10 08:03:00",
        "2025-10-10 08:02:00",
        "2025-10-10 08:01:00",
    ]
    nos = [s["no"] for s in result]
    assert [s["no"] for s in recent(http, tenant, limit=2)] == nos[:2]
    assert len(recent(http, tenant, limit=100)) == 5
    assert [s["no"] for s in recent(http, tenant, limit="1")] == nos[:1]


def test_limit_caps_at_100_by_default(http: httpx.Client, tenant: Tenant) -> None:
    base = at("2025-10-10 08:00:00")
    seed(
        http,
        tenant,
        [player("startup", at=base + timedelta(seconds=i), session=f"s{i}") for i in range(105)],
    )
    result = recent(http, tenant)
    assert len(result) == 100
    assert result[0]["logDate"] == "2025-10-10 08:01:44"


def test_device_and_video_type_filters(http: httpx.Client, tenant: Tenant) -> None:
    t = at("2025-10-10 12:00:00")
    seed(
        http,
        tenant,
        [
            player("startup", at=t, session="pc-vod", device="PC", video_type="VOD"),
            player("startup", at=t, session="mob-live", device="Mobile", video_type="LIVE"),
            player("startup", at=t, session="pc-live", device="PC", video_type="LIVE"),
        ],
    )

    def devices(**params: Any) -> list[tuple[str, int]]:
        return sorted((s["device"], len(s["sessionLog"])) for s in recent(http, tenant, **params))

    assert len(recent(http, tenant)) == 3
    assert devices(device="PC") == [("PC", 1), ("PC", 1)]
    assert devices(device="Mobile") == [("Mobile", 1)]
    assert devices(device="pc,mobile") == [("Mobile", 1), ("PC", 1), ("PC", 1)]
    assert len(recent(http, tenant, videoType="LIVE")) == 2
    assert len(recent(http, tenant, videoType="VOD")) == 1
    assert len(recent(http, tenant, videoType="VOD,LIVE")) == 3
    assert len(recent(http, tenant, device="PC", videoType="LIVE")) == 1
    assert recent(http, tenant, device="Mobile", videoType="VOD") == []


def test_range_selects_sessions_by_last_event(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            player("startup", at=at("2025-10-09 23:00:00"), session="before"),
            # Started the day before, last event inside the window: included.
            player("startup", at=at("2025-10-09 23:30:00"), session="into"),
            player("playing", at=at("2025-10-10 00:30:00"), session="into", duration_ms=1),
            player("startup", at=at("2025-10-10 12:00:00"), session="inside"),
            # Last event after the window: not (yet) a session of the window.
            player("startup", at=at("2025-10-10 23:00:00"), session="past"),
            player("playing", at=at("2025-10-11 01:00:00"), session="past", duration_ms=1),
        ],
    )

    def dates(start: str, end: str) -> list[str]:
        return [s["logDate"] for s in recent(http, tenant, startDate=start, endDate=end)]

    assert dates("2025-10-10", "2025-10-10") == ["2025-10-10 12:00:00", "2025-10-10 00:30:00"]
    assert dates("2025-10-10 00:00:00", "2025-10-10 06:00:00") == ["2025-10-10 00:30:00"]
    assert dates("2025-10-10T11:00:00Z", "2025-10-10T13:00:00+00:00") == ["2025-10-10 12:00:00"]
    # Offsets are honoured: 21:00+09:00 is 12:00 UTC.
    assert dates("2025-10-10T20:59:00+09:00", "2025-10-10T21:01:00+09:00") == [
        "2025-10-10 12:00:00"
    ]
    assert len(dates("2025-10-09", "2025-10-11")) == 4
    assert dates("2025-10-12", "2025-10-13") == []


def test_default_range_is_the_last_24_hours(http: httpx.Client, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    seed(
        http,
        tenant,
        [
            player("startup", at=now - timedelta(hours=1), session="fresh"),
            player("startup", at=now - timedelta(days=2), session="stale"),
        ],
    )
    body = ok(get(http, tenant, "/v1/sessionRecent"))
    assert body["message"] == "sessionRecent (1d)"
    assert [s["no"] for s in body["result"]] == [str(session_no(tenant.project.id, "fresh"))]
    week = ok(get(http, tenant, "/v1/sessionRecent", startDate=iso(now - timedelta(days=7))))
    assert week["message"] == "sessionRecent (7d)"
    assert len(week["result"]) == 2


def test_empty_result(http: httpx.Client, tenant: Tenant) -> None:
    body = ok(get(http, tenant, "/v1/sessionRecent"))
    assert body == {"code": 200, "message": "sessionRecent (1d)", "result": []}


def test_error_event_and_rebuffering(http: httpx.Client, tenant: Tenant) -> None:
    t = at("2025-10-10 12:00:00")
    seed(
        http,
        tenant,
        [
            player("startup", at=t, session="e", duration_ms=1200),
            player("rebuffering", at=t + timedelta(seconds=5), session="e", duration_ms=195),
            player("error", at=t + timedelta(seconds=6), session="e"),
        ],
    )
    (s,) = recent(http, tenant)
    assert (s["totalStartTime"], s["rebufferingTime"], s["isError"]) == (1.2, 0.195, True)
    assert [e["actionType"] for e in s["sessionLog"]] == ["startup", "rebuffering", "error"]


# ------------------------------------------------------------------------------ errors


def naver_error(r: httpx.Response, status: int, code: str, *names: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and list(body["error"]) == ["errorCode", "message"]
    assert body["error"]["errorCode"] == code
    message: str = body["error"]["message"]
    for name in names:
        assert name in message
    return message


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        ({}, "x-api-key"),
        ({"x-project-id": "{pid}"}, "x-api-key"),
        ({"x-api-key": "{key}"}, "x-project-id"),
        ({"x-api-key": "ss_nope.nope", "x-project-id": "{pid}"}, "x-api-key"),
        ({"x-api-key": "{key}", "x-project-id": "abc"}, "x-project-id"),
        ({"x-api-key": "{key}", "x-project-id": "999999"}, "x-project-id"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/sessionRecent", f"/v1/sessionRecent/{UUID}"])
def test_credentials_are_required(
    http: httpx.Client, tenant: Tenant, headers: dict[str, str], name: str, path: str
) -> None:
    filled = {k: v.format(key=tenant.api_key, pid=tenant.project.id) for k, v in headers.items()}
    message = naver_error(http.get(path, headers=filled), 401, "200", name)
    assert tenant.api_key not in message


@pytest.mark.parametrize("path", ["/v1/charts/playCnt", "/v1/charts/currentViewers"])
def test_charts_require_credentials(http: httpx.Client, path: str) -> None:
    naver_error(http.get(path), 401, "200", "x-api-key")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"startDate": "yesterday"}, "startDate"),
        ({"startDate": "2025-13-01"}, "startDate"),
        ({"endDate": "2025-10-10 25:00:00"}, "endDate"),
        ({"startDate": "2025-10-10", "endDate": "2025-10-09"}, "endDate"),
        ({"startDate": "2025-10-10 12:00:00", "endDate": "2025-10-10 11:59:59"}, "endDate"),
        ({"startDate": "2999-01-01"}, "startDate"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"device": "TV"}, "device"),
        ({"device": "PC,Tablet"}, "device"),
        ({"videoType": "CLIP"}, "videoType"),
    ],
)
def test_bad_parameters_answer_400(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], name: str
) -> None:
    naver_error(get(http, tenant, "/v1/sessionRecent", **params), 400, "100", name)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"startDate": "nope"}, "startDate"),
        ({"startDate": "2025-10-10", "endDate": "2025-10-01"}, "endDate"),
        ({"device": "Console"}, "device"),
        ({"videoType": "vod,clip"}, "videoType"),
    ],
)
@pytest.mark.parametrize("chart", ["playCnt", "playTimeSum", "uniqUserCnt"])
def test_bad_chart_parameters_answer_400(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], name: str, chart: str
) -> None:
    naver_error(get(http, tenant, f"/v1/charts/{chart}", **params), 400, "100", name)


#: Inputs that once answered 500 (a crash) and must answer 400 naming the parameter.
OUT_OF_RANGE: list[tuple[dict[str, str], str]] = [
    # Epoch milliseconds past what a datetime holds (OSError) ...
    ({"startDate": "99999999999999999999"}, "startDate"),
    ({"endDate": "99999999999999999"}, "endDate"),
    # A start one day before 0001-01-01 (OverflowError in the default range).
    ({"endDate": "0001-01-01"}, "endDate"),
    # Before year 1 once converted to UTC (OverflowError in astimezone).
    ({"startDate": "0001-01-01T00:00:00+01:00"}, "startDate"),
    # Buckets stepping past year 9999 (OverflowError when filling a chart).
    ({"startDate": "9999-12-31", "endDate": "9999-12-31"}, "startDate"),
    # Accepted before, formatted as "2-01-01 23:55:00".
    ({"startDate": "0002-01-01", "endDate": "0002-01-01"}, "startDate"),
    ({"startDate": "1969-12-31T23:59:59Z", "endDate": "2025-10-10"}, "startDate"),
]


CHART_AND_LIST = ["/v1/sessionRecent", "/v1/charts/playCnt", "/v1/charts/playTimeSum"]


@pytest.mark.parametrize(("params", "name"), OUT_OF_RANGE)
@pytest.mark.parametrize("path", CHART_AND_LIST)
def test_out_of_range_dates_answer_400(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], name: str, path: str
) -> None:
    message = naver_error(get(http, tenant, path, **params), 400, "100", name)
    assert "1970-01-01" in message and "9998-12-31" in message


@pytest.mark.parametrize(
    ("params", "name"),
    [
        # Ten characters str.isdigit() takes and int() refuses (once a ValueError, a 500).
        ({"startDate": "\u00b2" * 10}, "startDate"),
        ({"endDate": "\u0661" * 13}, "endDate"),
        ({"startDate": "\uff12\uff10\uff12\uff15-10-10"}, "startDate"),
    ],
)
@pytest.mark.parametrize("path", CHART_AND_LIST)
def test_dates_take_ascii_digits_only(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], name: str, path: str
) -> None:
    naver_error(get(http, tenant, path, **params), 400, "100", name)


def test_dates_at_the_bounds_are_accepted(http: httpx.Client, tenant: Tenant) -> None:
    body = ok(get(http, tenant, "/v1/sessionRecent", startDate="1970-01-01", endDate="1970-01-01"))
    assert body == {"code": 200, "message": "sessionRecent (1d)", "result": []}
    chart = ok(
        get(http, tenant, "/v1/charts/playCnt", startDate="9998-12-31", endDate="9998-12-31")
    )
    assert len(chart["result"]) == 288
    assert chart["result"][0] == {"playCnt": 0, "logDate": "9998-12-31 23:55:00"}
    # Epoch milliseconds name the same instants.
    epoch = ok(get(http, tenant, "/v1/sessionRecent", startDate="0000000000", endDate="0086399999"))
    assert epoch["result"] == []


@pytest.mark.parametrize(
    "limit", ["\u00b2", "\u0661\u0660", "\uff11", "1\u00b2", "99999999999999999999999"]
)
def test_limit_takes_ascii_digits_only(http: httpx.Client, tenant: Tenant, limit: str) -> None:
    # "١٠" is Arabic-Indic 10: once read as 10; "²" and "１" crashed int().
    naver_error(get(http, tenant, "/v1/sessionRecent", limit=limit), 400, "100", "limit")


def test_limit_percent_encoded_in_the_url(http: httpx.Client, tenant: Tenant) -> None:
    r = http.get("/v1/sessionRecent?limit=%C2%B2", headers=vpe(tenant))
    naver_error(r, 400, "100", "limit")


@pytest.mark.parametrize("project_id", [b"\xb2", "\u0661".encode(), b"\xb9\xb2", b"1" * 40])
def test_project_id_takes_ascii_digits_only(
    http: httpx.Client, tenant: Tenant, project_id: bytes
) -> None:
    headers = {b"x-api-key": tenant.api_key.encode(), b"x-project-id": project_id}
    naver_error(http.get("/v1/sessionRecent", headers=headers), 401, "200", "x-project-id")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"device": "TV"}, "device"),
        ({"device": "PC,"}, "device"),
        ({"videoType": "CLIP"}, "videoType"),
        ({"videoType": "vod,live,4k"}, "videoType"),
    ],
)
def test_bad_current_viewers_parameters_answer_400(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], name: str
) -> None:
    naver_error(get(http, tenant, "/v1/charts/currentViewers", **params), 400, "100", name)


def test_current_viewers_ignores_the_date_range(http: httpx.Client, tenant: Tenant) -> None:
    # Always the last hour: startDate/endDate are not read (not even checked).
    plain = ok(get(http, tenant, "/v1/charts/currentViewers"))
    dated = ok(
        get(http, tenant, "/v1/charts/currentViewers", startDate="nonsense", endDate="0001-01-01")
    )
    assert dated["message"] == plain["message"] == "currentViewers (1h)"
    assert len(dated["result"]) == 60


def test_unknown_chart_is_a_naver_404(http: httpx.Client, tenant: Tenant) -> None:
    naver_error(get(http, tenant, "/v1/charts/nothing"), 404, "300")


# ------------------------------------------------------------------------------ tenants


def test_tenant_isolation(
    http: httpx.Client, tenant: Tenant, new_project: Callable[[], Tenant]
) -> None:
    seed(http, tenant, golden_events())
    other = new_project()
    assert len(recent(http, tenant)) == 1
    assert recent(http, other) == []
    naver_error(get(http, other, f"/v1/sessionRecent/{UUID}"), 404, "300", "uuid")
    chart = ok(get(http, other, "/v1/charts/playCnt", startDate="2025-10-10", endDate="2025-10-10"))
    assert sum(p["playCnt"] for p in chart["result"]) == 0
    # Another project's key cannot be used with this project's id.
    crossed = {"x-api-key": other.api_key, "x-project-id": str(tenant.project.id)}
    naver_error(http.get("/v1/sessionRecent", headers=crossed), 401, "200", "x-project-id")


# ------------------------------------------------------------------------------ detail


DETAIL = {
    "browser": "Chrome 129",
    "ip": "203.0.113.7",
    "screen": "1920x1080",
    "lang": "ko-KR",
    "page": "https://mediaplus-demo.web.app/watch/42",
    "isp": "KT",
    "nation": "KR",
    "media": "https://cdn.example.com/vod/42/master.m3u8",
    "address": "Seoul, KR",
    "player_name": "ncplayer",
    "player_version": "1.6.2",
}


def test_session_detail(http: httpx.Client, tenant: Tenant) -> None:
    older = [
        player("startup", at=at("2025-10-09 10:00:00"), session="old", user=UUID, duration_ms=1)
    ]
    latest = golden_events("new")
    latest[0] = {**latest[0], **DETAIL}
    failure = {"error_code": "E0003", "error_message": "Network error: the connection was lost"}
    latest.insert(
        3, player("error", at=at("2025-10-10 09:51:00"), session="new", user=UUID, **failure)
    )
    # An error the player reported without a code.
    latest.insert(4, player("error", at=at("2025-10-10 09:52:00"), session="new", user=UUID))
    # A later event with another player build: the most recent value wins.
    latest[-1] = {**latest[-1], "player_version": "1.6.3"}
    seed(http, tenant, older + latest)
    body = ok(get(http, tenant, f"/v1/sessionRecent/{UUID}"))
    result = body["result"]
    assert list(result) == ["startTime", "user", "player", "error", "sessionLog", "media"]
    assert result["startTime"] == {
        "playerStartTimeSum": 0.005,
        "videoStartTimeSum": 0.591,
        "totalStartTimeSum": 0.596,
    }
    assert result["user"] == {
        "os": OS,
        "isp": "KT",
        "nation": "KR",
        "address": "Seoul, KR",
        "browser": "Chrome 129",
        "ip": "203.0.113.7",
        "device": "PC",
        "screen": "1920x1080",
        "lang": "ko-KR",
        "visitedPage": "https://mediaplus-demo.web.app/watch/42",
    }
    assert result["player"] == {"playerName": "ncplayer", "playerVersion": "1.6.3"}
    assert result["error"] == [
        {
            "logDate": "2025-10-10 09:51:00",
            "videoTime": "00:00:00",
            "actionType": "error",
            "actionDuration": 0,
            "uuid": MASKED,
            "errorCode": "E0003",
            "errorMessage": "Network error: the connection was lost",
        },
        {
            "logDate": "2025-10-10 09:52:00",
            "videoTime": "00:00:00",
            "actionType": "error",
            "actionDuration": 0,
            "uuid": MASKED,
            "errorCode": None,
            "errorMessage": None,
        },
    ]
    assert [e["actionType"] for e in result["sessionLog"]] == [
        "player_start",
        "startup",
        "playing",
        "error",
        "error",
        "startup",
        "playing",
        "ended",
    ]
    assert result["media"] == {"source": DETAIL["media"], "videoType": "VOD"}
    # The uuid is matched in any case and format a UUID may be written in.
    upper = ok(get(http, tenant, f"/v1/sessionRecent/{UUID.upper()}"))
    assert upper["result"] == result


def test_session_detail_without_detail_fields(http: httpx.Client, tenant: Tenant) -> None:
    seed(http, tenant, [player("startup", at=at("2025-10-10 10:00:00"), user=OTHER, os="")])
    result = ok(get(http, tenant, f"/v1/sessionRecent/{OTHER}"))["result"]
    assert result["user"] == {
        "os": None,
        "isp": None,
        "nation": None,
        "address": None,
        "browser": None,
        "ip": None,
        "device": "PC",
        "screen": None,
        "lang": None,
        "visitedPage": None,
    }
    assert result["player"] == {"playerName": None, "playerVersion": None}
    assert result["error"] == []
    assert result["media"] == {"source": None, "videoType": "VOD"}


def test_session_detail_errors(http: httpx.Client, tenant: Tenant) -> None:
    message = naver_error(get(http, tenant, f"/v1/sessionRecent/{OTHER}"), 404, "300", "uuid")
    assert OTHER in message
    naver_error(get(http, tenant, "/v1/sessionRecent/not-a-uuid"), 400, "100", "uuid")


# ------------------------------------------------------------------------------ charts


def chart_events() -> list[dict[str, Any]]:
    return [
        player("startup", at=at("2025-10-10 09:49:46"), session="a", user=UUID, duration_ms=352),
        player("playing", at=at("2025-10-10 09:50:16"), session="a", user=UUID, duration_ms=30057),
        player(
            "startup",
            at=at("2025-10-10 10:02:00"),
            session="b",
            user=OTHER,
            device="Mobile",
            video_type="LIVE",
            duration_ms=500,
        ),
        player(
            "playing",
            at=at("2025-10-10 10:03:00"),
            session="b",
            user=OTHER,
            device="Mobile",
            video_type="LIVE",
            duration_ms=60000,
        ),
        player("playing", at=at("2025-10-11 08:00:00"), session="c", user=UUID, duration_ms=1000),
    ]


def by_date(result: list[dict[str, Any]], field: str) -> dict[str, Any]:
    return {p["logDate"]: p[field] for p in result if p[field]}


def test_charts_five_minute_points_up_to_a_day(http: httpx.Client, tenant: Tenant) -> None:
    seed(http, tenant, chart_events())
    day = {"startDate": "2025-10-10", "endDate": "2025-10-10"}
    body = ok(get(http, tenant, "/v1/charts/playCnt", **day))
    assert body["message"] == "playCnt (1d)"
    result = body["result"]
    assert len(result) == 288
    assert all(list(p) == ["playCnt", "logDate"] for p in result)
    assert result[0]["logDate"] == "2025-10-10 23:55:00"  # newest first
    assert result[-1]["logDate"] == "2025-10-10 00:00:00"
    stamps = [datetime.fromisoformat(p["logDate"]) for p in result]
    assert all(a - b == timedelta(minutes=5) for a, b in itertools.pairwise(stamps))
    assert by_date(result, "playCnt") == {"2025-10-10 09:45:00": 1, "2025-10-10 10:00:00": 1}
    mobile = ok(get(http, tenant, "/v1/charts/playCnt", device="Mobile", **day))["result"]
    assert by_date(mobile, "playCnt") == {"2025-10-10 10:00:00": 1}
    vod = ok(get(http, tenant, "/v1/charts/playCnt", videoType="VOD", **day))["result"]
    assert by_date(vod, "playCnt") == {"2025-10-10 09:45:00": 1}

    seconds = ok(get(http, tenant, "/v1/charts/playTimeSum", **day))
    assert seconds["message"] == "playTimeSum (1d)"
    assert by_date(seconds["result"], "playTimeSum") == {
        "2025-10-10 09:50:00": 30.057,
        "2025-10-10 10:00:00": 60.0,
    }
    users = ok(get(http, tenant, "/v1/charts/uniqUserCnt", **day))["result"]
    assert by_date(users, "uniqUsers") == {
        "2025-10-10 09:45:00": 1,
        "2025-10-10 09:50:00": 1,
        "2025-10-10 10:00:00": 1,
    }


def test_charts_daily_points_beyond_a_day(http: httpx.Client, tenant: Tenant) -> None:
    seed(http, tenant, chart_events())
    body = ok(
        get(http, tenant, "/v1/charts/uniqUserCnt", startDate="2025-10-09", endDate="2025-10-11")
    )
    assert body["message"] == "uniqUserCnt (3d)"
    assert body["result"] == [
        {"uniqUsers": 1, "logDate": "2025-10-11 00:00:00"},
        {"uniqUsers": 2, "logDate": "2025-10-10 00:00:00"},
        {"uniqUsers": 0, "logDate": "2025-10-09 00:00:00"},
    ]
    two = ok(
        get(http, tenant, "/v1/charts/playTimeSum", startDate="2025-10-10", endDate="2025-10-11")
    )
    assert two["message"] == "playTimeSum (2d)"
    assert [p["playTimeSum"] for p in two["result"]] == [1.0, 90.057]
    pc = ok(
        get(
            http,
            tenant,
            "/v1/charts/playCnt",
            device="PC",
            startDate="2025-10-10",
            endDate="2025-10-11",
        )
    )
    assert [p["playCnt"] for p in pc["result"]] == [1, 1]


def test_current_viewers_last_hour_by_minute(http: httpx.Client, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    seed(
        http,
        tenant,
        [
            player("playing", at=now - timedelta(minutes=10), session="x", user=UUID),
            player("playing", at=now - timedelta(minutes=10), session="y", user=OTHER),
            player("playing", at=now - timedelta(minutes=30), session="x", user=UUID),
            player(
                "playing", at=now - timedelta(minutes=30), session="z", user=OTHER, device="Mobile"
            ),
            player("playing", at=now - timedelta(hours=3), session="old", user=UUID),
        ],
    )
    body = ok(get(http, tenant, "/v1/charts/currentViewers"))
    assert body["message"] == "currentViewers (1h)"
    result = body["result"]
    assert len(result) == 60
    assert all(list(p) == ["currentViewerCnt", "logDate"] for p in result)
    stamps = [datetime.fromisoformat(p["logDate"]) for p in result]
    assert all(a - b == timedelta(minutes=1) for a, b in itertools.pairwise(stamps))

    def minute(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M:00")

    ten, thirty = minute(now - timedelta(minutes=10)), minute(now - timedelta(minutes=30))
    assert by_date(result, "currentViewerCnt") == {ten: 2, thirty: 2}
    pcs = ok(get(http, tenant, "/v1/charts/currentViewers", device="PC"))["result"]
    assert by_date(pcs, "currentViewerCnt") == {ten: 2, thirty: 1}


def test_current_viewers_counts_players_not_users(http: httpx.Client, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    t = now - timedelta(minutes=20)
    seed(
        http,
        tenant,
        [
            # One user watching in two tabs: two players.
            player("playing", at=t, session="tab-1", user=UUID),
            player("playing", at=t, session="tab-2", user=UUID),
            # One player reporting twice in the minute: one player.
            player("seeking", at=t, session="other", user=OTHER),
            player("playing", at=t + timedelta(milliseconds=1), session="other", user=OTHER),
        ],
    )
    result = ok(get(http, tenant, "/v1/charts/currentViewers"))["result"]
    assert by_date(result, "currentViewerCnt") == {t.strftime("%Y-%m-%d %H:%M:00"): 3}


def test_charts_count_only_data_from_start_date_on(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            player("startup", at=at("2025-10-10 22:30:00"), session="early", duration_ms=10),
            player("playing", at=at("2025-10-10 22:31:00"), session="early", duration_ms=60000),
            player("startup", at=at("2025-10-10 23:30:00"), session="late", user=OTHER),
            player("playing", at=at("2025-10-10 23:31:00"), session="late", duration_ms=2000),
            player("startup", at=at("2025-10-11 09:46:00"), session="x", duration_ms=1),
            player("startup", at=at("2025-10-11 09:48:00"), session="y", duration_ms=1),
        ],
    )
    # Daily points from 23:00: the first point keeps its label (midnight) but counts only
    # what happened from 23:00 on.
    daily = {"startDate": "2025-10-10T23:00:00Z", "endDate": "2025-10-11"}
    plays = ok(get(http, tenant, "/v1/charts/playCnt", **daily))
    assert plays["message"] == "playCnt (25h)"  # to the end of the bare endDate
    assert plays["result"] == [
        {"playCnt": 2, "logDate": "2025-10-11 00:00:00"},
        {"playCnt": 1, "logDate": "2025-10-10 00:00:00"},
    ]
    seconds = ok(get(http, tenant, "/v1/charts/playTimeSum", **daily))["result"]
    assert [p["playTimeSum"] for p in seconds] == [0.0, 2.0]
    users = ok(get(http, tenant, "/v1/charts/uniqUserCnt", **daily))["result"]
    assert [p["uniqUsers"] for p in users] == [1, 2]
    # 5-minute points: 09:46 is before the start, 09:48 inside the 09:45 bucket.
    five = {"startDate": "2025-10-11 09:47:00", "endDate": "2025-10-11 10:00:00"}
    result = ok(get(http, tenant, "/v1/charts/playCnt", **five))["result"]
    assert [p["logDate"] for p in result][-1] == "2025-10-11 09:45:00"
    assert by_date(result, "playCnt") == {"2025-10-11 09:45:00": 1}
    # The native time series is the same core path and agrees.
    native = http.get(
        "/api/v1/timeseries",
        params={
            "kind": "player",
            "metric": "sessions",
            "from": daily["startDate"],
            "to": "2025-10-11",
        },
        headers=tenant.auth,
    ).json()
    assert [(p["time"], p["sessions"]) for p in native["points"]] == [
        ("2025-10-10T00:00:00.000Z", 1),
        ("2025-10-11T00:00:00.000Z", 2),
    ]


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        ("2025-10-10 00:00:00", "2025-10-11 00:00:01", "1d"),  # 1 day + 1 s
        ("2025-10-10 00:00:00", "2025-10-11 01:00:00", "25h"),
        ("2025-10-10 00:00:00", "2025-10-11 23:59:59", "2d"),  # 2 days - 1 s
        ("2025-10-10 00:00:00", "2025-10-11 12:00:00", "36h"),
        ("2025-10-10 09:00:00", "2025-10-10 10:30:00", "90m"),
        ("2025-10-10 09:00:00", "2025-10-10 09:00:45", "45s"),
        ("2025-10-03", "2025-10-10", "8d"),
    ],
)
def test_span_labels(http: httpx.Client, tenant: Tenant, start: str, end: str, label: str) -> None:
    params = {"startDate": start, "endDate": end}
    assert (
        ok(get(http, tenant, "/v1/sessionRecent", **params))["message"]
        == f"sessionRecent ({label})"
    )
    assert ok(get(http, tenant, "/v1/charts/playCnt", **params))["message"] == f"playCnt ({label})"


def test_simulated_sessions_fill_every_detail_field(http: httpx.Client, tenant: Tenant) -> None:
    end = datetime(2025, 10, 10, 12, tzinfo=UTC)
    config = SimulationConfig(seed=11, start=end - timedelta(days=1), end=end, kinds=("player",))
    events = list(simulate(config))
    seed(http, tenant, events)
    errors = [e for e in events if e["type"] == "error"]
    assert errors and all(e["error_code"].startswith("E000") for e in errors)
    users = {e["user"] for e in errors} | {events[0]["user"]}
    seen_errors = 0
    for user in sorted(users):
        result = ok(get(http, tenant, f"/v1/sessionRecent/{user}"))["result"]
        assert result["player"]["playerName"] == "ncplayer"
        assert result["player"]["playerVersion"]
        assert result["user"]["address"] and result["user"]["nation"] in result["user"]["address"]
        for entry in result["error"]:
            assert entry["errorCode"] and entry["errorMessage"]
            seen_errors += 1
    assert seen_errors > 0
