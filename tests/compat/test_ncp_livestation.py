"""NAVER Cloud Live Station compatible API: channel events, publish log, signature v2, callbacks.

Signatures are computed here independently (hmac + base64), never with the module's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.conftest import Tenant
from tests.factories import BASE, channel, iso, minutes

from sessionscope.compat.ncp_livestation import DEFAULT_DESCRIPTIONS, install
from sessionscope.simulate import SimulationConfig, simulate
from sessionscope.store.clickhouse import ClickHouseStore

SEED_CHANNEL = "ls-20250818******-KRXat"
#: The response example of the seed page, newest first (its first four entries).
SEED_CONTENT: list[dict[str, Any]] = [
    {
        "logLevel": "INFO",
        "eventCode": "PUBLISH_END",
        "description": "channel000 channel publishing has ended.",
        "timestamp": 1755591429630,
        "channelId": SEED_CHANNEL,
    },
    {
        "logLevel": "INFO",
        "eventCode": "ONAIR_END",
        "description": "channel000 Channel recording has ended.",
        "timestamp": 1755591396176,
        "channelId": SEED_CHANNEL,
    },
    {
        "logLevel": "INFO",
        "eventCode": "ONAIR_START",
        "description": "You have started recording channel channel000.",
        "timestamp": 1755591356004,
        "channelId": SEED_CHANNEL,
    },
    {
        "logLevel": "INFO",
        "eventCode": "PUBLISH_START",
        "description": "You have started publishing channel channel000.",
        "timestamp": 1755591346586,
        "channelId": SEED_CHANNEL,
    },
]
ITEM_KEYS = ["logLevel", "eventCode", "description", "timestamp", "channelId"]


@dataclass(frozen=True)
class Signer:
    """A project with an NCP access key / secret key pair (and its native API key)."""

    tenant: Tenant
    access_key: str
    secret_key: str

    def headers(
        self,
        method: str,
        target: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        access_key: str | None = None,
    ) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else time.time_ns() // 1_000_000)
        ak = access_key or self.access_key
        message = f"{method} {target}\n{ts}\n{ak}".encode()
        key = (secret or self.secret_key).encode()
        signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        return {
            "x-ncp-apigw-timestamp": ts,
            "x-ncp-iam-access-key": ak,
            "x-ncp-apigw-signature-v2": signature,
            "x-ncp-region_code": "KR",
        }

    def get(self, http: httpx.Client, target: str, **kw: Any) -> httpx.Response:
        return http.get(target, headers=self.headers("GET", target, **kw))


@pytest.fixture
def new_signer(store: ClickHouseStore, new_project: Callable[[], Tenant]) -> Callable[[], Signer]:
    def make() -> Signer:
        tenant = new_project()
        access_key, secret_key = store.create_signing_key(tenant.project.id, "test")
        return Signer(tenant, access_key, secret_key)

    return make


@pytest.fixture
def signer(new_signer: Callable[[], Signer]) -> Signer:
    return new_signer()


def seed(http: httpx.Client, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.status_code == 200, r.text


def seed_native(http: httpx.Client, tenant: Tenant) -> None:
    """The seed's four events through the native API (oldest first, as an encoder sends)."""
    seed(
        http,
        tenant,
        [
            {
                "kind": "channel",
                "id": f"n{i}",
                "time": c["timestamp"],
                "type": c["eventCode"],
                "channel": c["channelId"],
                "level": c["logLevel"],
                "description": c["description"],
            }
            for i, c in enumerate(reversed(SEED_CONTENT))
        ],
    )


def callbacks() -> list[dict[str, Any]]:
    """The seed's four events as Live Station sends them: only the callback's own fields."""
    return [
        {
            "id": 1000 + i,
            "logLevel": c["logLevel"],
            "channelId": c["channelId"],
            "event": c["eventCode"],
            "timestamp": c["timestamp"],
        }
        for i, c in enumerate(reversed(SEED_CONTENT))
    ]


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert list(body) == ["content", "total"]
    for item in body["content"]:
        assert list(item) == ITEM_KEYS
        assert type(item["timestamp"]) is int
    return body


def error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and list(body["error"]) == ["errorCode", "message"]
    assert body["error"]["errorCode"] == code, body
    message: str = body["error"]["message"]
    return message


# ------------------------------------------------------------------------------ golden


def test_golden_through_the_native_api(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    body = ok(signer.get(http, f"/api/v2/channels/{SEED_CHANNEL}/events"))
    assert body == {"content": SEED_CONTENT, "total": 4}


def test_golden_through_the_callback(http: httpx.Client, signer: Signer) -> None:
    r = http.post("/api/v2/callbacks/events", json=callbacks(), headers=signer.tenant.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 4, "duplicates": 0}
    # A callback carries no description and no channel name: the seed's sentences, with the
    # channel id where the seed has the channel's name ("channel000").
    expected = [
        {**c, "description": c["description"].replace("channel000", SEED_CHANNEL)}
        for c in SEED_CONTENT
    ]
    assert expected[0]["description"] == f"{SEED_CHANNEL} channel publishing has ended."
    assert expected[1]["description"] == f"{SEED_CHANNEL} Channel recording has ended."
    assert expected[2]["description"] == f"You have started recording channel {SEED_CHANNEL}."
    assert expected[3]["description"] == f"You have started publishing channel {SEED_CHANNEL}."
    body = ok(signer.get(http, f"/api/v2/channels/{SEED_CHANNEL}/events"))
    assert body == {"content": expected, "total": 4}
    assert [c["timestamp"] for c in body["content"]] == [c["timestamp"] for c in SEED_CONTENT]
    everything = ok(signer.get(http, "/api/v2/events"))
    assert everything == {"content": expected, "total": 4}


def test_default_descriptions_follow_the_simulated_sentences() -> None:
    """Every sentence the simulator writes (the seed's shapes) is the template of its code."""
    config = SimulationConfig(
        seed=3, start=BASE, end=BASE + minutes(3 * 24 * 60), kinds=("channel",), channels=4
    )
    seen: set[str] = set()
    for event in simulate(config):
        # The simulator names channels "channel000", ...; a callback only has the id.
        name = re.search(r"channel[0-9]{3}", event["description"])
        assert name is not None, event
        expected = DEFAULT_DESCRIPTIONS[event["type"]].format(channel=name[0])
        assert expected == event["description"]
        seen.add(event["type"])
    assert {"PUBLISH_START", "PUBLISH_END", "ONAIR_START", "ONAIR_END", "STREAM_RESERVE"} <= seen


# ------------------------------------------------------------------------------ signing


def test_signed_request_is_accepted(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    target = f"/api/v2/events?channelId={SEED_CHANNEL}&pageSize=2"
    assert ok(signer.get(http, target))["total"] == 4
    # Four minutes off either way is still inside the window.
    now = time.time_ns() // 1_000_000
    for skew in (-4 * 60_000, 4 * 60_000):
        assert signer.get(http, target, timestamp=now + skew).status_code == 200


def test_naver_sdk_signature_v1_is_accepted(
    http: httpx.Client, signer: Signer, base_url: str
) -> None:
    """NAVER Cloud's own Python SDK (``ncloud-*`` packages, ``ApiClient``) signs the same
    string and sends it as ``x-ncp-apigw-signature-v1``: its real client, pointed here."""
    from ncloud_server.api_client import ApiClient
    from ncloud_server.configuration import Configuration

    seed_native(http, signer.tenant)
    config = Configuration()
    config.host = f"{base_url}/api/v2"  # the SDK signs its host's path before the resource
    config.access_key = signer.access_key
    config.secret_key = signer.secret_key
    client = ApiClient(config)
    try:
        answer = client.call_api(
            "/events",
            "GET",
            # The SDK signs query values as given and urllib3 percent-encodes them, so a value
            # that needs encoding (the seed's channel id has '*') fails against NAVER too.
            query_params=[("pageSize", "2")],
            header_params={"Accept": "application/json"},
            auth_settings=["x-ncp-iam"],
            _preload_content=False,
            _return_http_data_only=True,
        )
        assert answer.status == 200
        assert json.loads(answer.data)["total"] == 4
        # The same SDK with a wrong secret is refused, naming both header spellings.
        config.secret_key = signer.secret_key + "x"
        with pytest.raises(Exception) as refused:
            client.call_api(
                "/events",
                "GET",
                header_params={"Accept": "application/json"},
                auth_settings=["x-ncp-iam"],
                _preload_content=False,
            )
        assert getattr(refused.value, "status", None) == 401
    finally:
        client.pool.close()
        client.pool.join()


def test_wrong_secret(http: httpx.Client, signer: Signer) -> None:
    r = signer.get(http, "/api/v2/events", secret=signer.secret_key + "x")
    assert "x-ncp-apigw-signature-v2" in error(r, 401, "200")


def test_changed_query_string(http: httpx.Client, signer: Signer) -> None:
    signed = signer.headers("GET", "/api/v2/events?channelId=ls-a")
    r = http.get("/api/v2/events?channelId=ls-b", headers=signed)
    assert error(r, 401, "200").startswith("Authentication Failed")
    # The query string is signed exactly as sent: the same parameters in another order differ.
    signed = signer.headers("GET", "/api/v2/events?pageNo=1&pageSize=2")
    error(http.get("/api/v2/events?pageSize=2&pageNo=1", headers=signed), 401, "200")
    # A changed path or method fails as well.
    signed = signer.headers("GET", "/api/v2/events")
    error(http.get("/api/v2/channels/ls-a/events", headers=signed), 401, "200")
    signed = signer.headers("POST", "/api/v2/events")
    error(http.get("/api/v2/events", headers=signed), 401, "200")


def test_percent_encoded_path_and_query_are_signed_as_sent(
    http: httpx.Client, signer: Signer
) -> None:
    seed(http, signer.tenant, [channel("PUBLISH_START", at=BASE, channel="ls a+b")])
    for target in (
        "/api/v2/channels/ls%20a%2Bb/events",
        "/api/v2/channels/ls%20a%2bb/publish-log?pageNo=%31",
        "/api/v2/events?channelId=ls%20a%2Bb",
        "/api/v2/events?channelId=ls+a%2bb&pageSize=%31",
    ):
        assert ok(signer.get(http, target))["total"] == 1, target
    # Signing another spelling of the same request fails: decoded, re-encoded, other case.
    for sent, signed in (
        ("/api/v2/channels/ls%20a%2Bb/events", "/api/v2/channels/ls a+b/events"),
        ("/api/v2/channels/ls%20a%2Bb/events", "/api/v2/channels/ls%20a%2bb/events"),
        ("/api/v2/events?channelId=ls%20a%2Bb", "/api/v2/events?channelId=ls+a%2Bb"),
        ("/api/v2/events?channelId=ls%20a%2Bb", "/api/v2/events?channelId=ls a+b"),
    ):
        r = http.get(sent, headers=signer.headers("GET", signed))
        assert "x-ncp-apigw-signature-v2" in error(r, 401, "200"), (sent, signed)


def test_bare_trailing_question_mark(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    # httpx sends "/api/v2/events?" as written; it is accepted signed as sent, and signed
    # without the "?" (a server cannot tell the two apart).
    assert http.get("/api/v2/events?").request.url.raw_path == b"/api/v2/events?"
    for signed in ("/api/v2/events?", "/api/v2/events"):
        r = http.get("/api/v2/events?", headers=signer.headers("GET", signed))
        assert ok(r)["total"] == 4, signed
        r = http.get("/api/v2/events", headers=signer.headers("GET", signed))
        assert ok(r)["total"] == 4, signed
    # Not any other suffix.
    r = http.get("/api/v2/events?", headers=signer.headers("GET", "/api/v2/events?&"))
    error(r, 401, "200")


@pytest.mark.parametrize("skew_ms", [-(5 * 60_000 + 1000), 5 * 60_000 + 1000, -3_600_000])
def test_stale_and_future_timestamps(http: httpx.Client, signer: Signer, skew_ms: int) -> None:
    now = time.time_ns() // 1_000_000
    r = signer.get(http, "/api/v2/events", timestamp=now + skew_ms)
    assert "x-ncp-apigw-timestamp" in error(r, 401, "200")


@pytest.mark.parametrize(
    "header", ["x-ncp-apigw-timestamp", "x-ncp-iam-access-key", "x-ncp-apigw-signature-v2"]
)
def test_missing_header(http: httpx.Client, signer: Signer, header: str) -> None:
    headers = signer.headers("GET", "/api/v2/events")
    del headers[header]
    assert header in error(http.get("/api/v2/events", headers=headers), 401, "200")
    headers[header] = ""
    assert header in error(http.get("/api/v2/events", headers=headers), 401, "200")


def test_unknown_access_key_and_bad_timestamp(http: httpx.Client, signer: Signer) -> None:
    r = signer.get(http, "/api/v2/events", access_key="NOSUCHACCESSKEY00000")
    assert "x-ncp-iam-access-key" in error(r, 401, "200")
    headers = signer.headers("GET", "/api/v2/events")
    headers["x-ncp-apigw-timestamp"] = "yesterday"
    assert "x-ncp-apigw-timestamp" in error(http.get("/api/v2/events", headers=headers), 401, "200")
    headers["x-ncp-apigw-timestamp"] = "\u00b2"
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    error(http.get("/api/v2/events", headers=raw), 401, "200")
    # A native API key is not a signing key.
    error(http.get("/api/v2/events", headers=signer.tenant.auth), 401, "200")


# ------------------------------------------------------------------------------ endpoints


def test_unknown_channel_answers_live_station_not_found(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    for target in (
        "/api/v2/channels/ls-nope/events",
        "/api/v2/channels/ls-nope/publish-log",
        "/api/v2/events?channelId=ls-nope",
    ):
        assert "ls-nope" in error(signer.get(http, target), 404, "250004")


def test_not_found_message_caps_a_long_channel_id(http: httpx.Client, signer: Signer) -> None:
    long_id = "ls-" + "x" * 5000
    message = error(signer.get(http, f"/api/v2/channels/{long_id}/events"), 404, "250004")
    assert len(message) < 200 and message.endswith("...' not found.")
    assert message.startswith("channelId 'ls-xxx")
    message = error(signer.get(http, f"/api/v2/events?channelId={long_id}"), 404, "250004")
    assert len(message) < 200


def test_another_projects_channel_is_invisible(
    http: httpx.Client, new_signer: Callable[[], Signer]
) -> None:
    mine, theirs = new_signer(), new_signer()
    seed_native(http, theirs.tenant)
    seed(http, mine.tenant, [channel("PUBLISH_START", channel="ls-mine")])
    error(mine.get(http, f"/api/v2/channels/{SEED_CHANNEL}/events"), 404, "250004")
    error(mine.get(http, f"/api/v2/events?channelId={SEED_CHANNEL}"), 404, "250004")
    body = ok(mine.get(http, "/api/v2/events"))
    assert body["total"] == 1
    assert [c["channelId"] for c in body["content"]] == ["ls-mine"]


def test_publish_log_has_only_publish_events(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    seed(
        http,
        signer.tenant,
        [channel("PUBLISH_OVER_THRESHOLD", at=BASE, channel=SEED_CHANNEL, level="ERROR")],
    )
    body = ok(signer.get(http, f"/api/v2/channels/{SEED_CHANNEL}/publish-log"))
    assert body == {"content": [SEED_CONTENT[0], SEED_CONTENT[3]], "total": 2}


def test_events_of_all_channels_or_one(http: httpx.Client, signer: Signer) -> None:
    seed(
        http,
        signer.tenant,
        [
            channel("PUBLISH_START", at=BASE, channel="ls-a", description="a starts"),
            channel("PUBLISH_START", at=BASE + minutes(1), channel="ls-b", description="b starts"),
            channel(
                "PUBLISH_OVER_THRESHOLD",
                at=BASE + minutes(2),
                channel="ls-a",
                level="ERROR",
                description="a too fast",
            ),
        ],
    )
    every = ok(signer.get(http, "/api/v2/events"))
    assert every["total"] == 3
    assert [(c["channelId"], c["eventCode"], c["logLevel"]) for c in every["content"]] == [
        ("ls-a", "PUBLISH_OVER_THRESHOLD", "ERROR"),
        ("ls-b", "PUBLISH_START", "INFO"),
        ("ls-a", "PUBLISH_START", "INFO"),
    ]
    assert every["content"][0]["timestamp"] == int((BASE + minutes(2)).timestamp() * 1000)
    one = ok(signer.get(http, "/api/v2/events?channelId=ls-a"))
    assert one["total"] == 2
    assert [c["description"] for c in one["content"]] == ["a too fast", "a starts"]
    # An empty channelId is the same as none.
    assert ok(signer.get(http, "/api/v2/events?channelId="))["total"] == 3


def test_paging_and_time_filters(http: httpx.Client, signer: Signer) -> None:
    seed_native(http, signer.tenant)
    base = f"/api/v2/channels/{SEED_CHANNEL}/events"
    page = ok(signer.get(http, f"{base}?pageSize=3"))
    assert page == {"content": SEED_CONTENT[:3], "total": 4}
    page = ok(signer.get(http, f"{base}?pageNo=2&pageSize=3"))
    assert page == {"content": SEED_CONTENT[3:], "total": 4}
    assert ok(signer.get(http, f"{base}?pageNo=3&pageSize=3")) == {"content": [], "total": 4}
    assert ok(signer.get(http, f"{base}?pageNo=1"))["content"] == SEED_CONTENT  # size 20
    # Inclusive bounds, epoch milliseconds.
    lo, hi = SEED_CONTENT[2]["timestamp"], SEED_CONTENT[1]["timestamp"]
    window = ok(signer.get(http, f"{base}?startTime={lo}&endTime={hi}"))
    assert window == {"content": SEED_CONTENT[1:3], "total": 2}
    assert ok(signer.get(http, f"{base}?startTime={hi + 1}"))["total"] == 1
    assert ok(signer.get(http, f"{base}?endTime={lo - 1}"))["content"] == SEED_CONTENT[3:]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("pageSize=0", "pageSize"),
        ("pageSize=1001", "pageSize"),
        ("pageNo=zero", "pageNo"),
        ("pageSize=%C2%B2", "pageSize"),
        ("startTime=2025-08-19", "startTime"),
        ("endTime=-1", "endTime"),
        ("startTime=20&endTime=10", "endTime"),
    ],
)
def test_bad_parameters(http: httpx.Client, signer: Signer, query: str, names: str) -> None:
    seed_native(http, signer.tenant)
    r = signer.get(http, f"/api/v2/channels/{SEED_CHANNEL}/events?{query}")
    message = error(r, 400, "100")
    assert message.startswith("Bad Request Exception") and names in message


def test_unknown_route_and_method(http: httpx.Client, signer: Signer) -> None:
    error(signer.get(http, "/api/v2/channels"), 404, "300")
    error(http.get("/api/v2/nothing/here"), 404, "300")
    r = http.post("/api/v2/events", headers=signer.headers("POST", "/api/v2/events"))
    error(r, 405, "100")


# ------------------------------------------------------------------------------ callbacks


def test_callback_is_idempotent_on_id(http: httpx.Client, signer: Signer) -> None:
    one = {
        "id": 1234,
        "logLevel": "INFO",
        "channelId": "ls-cb",
        "event": "STREAM_UPDATE",
        "timestamp": 1599218791425,
    }
    url = "/api/v2/callbacks/events"
    assert http.post(url, json=one, headers=signer.tenant.auth).json() == {
        "accepted": 1,
        "duplicates": 0,
    }
    again = http.post(
        url, json=[one, {**one, "id": "abc", "event": "PUBLISH_START"}], headers=signer.tenant.auth
    )
    assert again.json() == {"accepted": 1, "duplicates": 1}
    body = ok(signer.get(http, "/api/v2/channels/ls-cb/events"))
    assert body["total"] == 2
    # Without a description, Live Station's sentence for the code is shown.
    assert body["content"][0]["description"] == "You have started publishing channel ls-cb."
    assert body["content"][1] == {
        "logLevel": "INFO",
        "eventCode": "STREAM_UPDATE",
        "description": "ls-cb channel has been updated.",
        "timestamp": 1599218791425,
        "channelId": "ls-cb",
    }
    # Stored as channel events of the core, under a prefixed id.
    native = http.get(
        "/api/v1/sessions?kind=channel&channel=ls-cb", headers=signer.tenant.auth
    ).json()
    assert len(native["sessions"]) == 1
    detail = http.get(
        f"/api/v1/sessions/channel/{native['sessions'][0]['session']}",
        headers=signer.tenant.auth,
    ).json()
    assert [e["id"] for e in detail["events"]] == ["livestation-abc"]


def test_callback_authentication(http: httpx.Client, signer: Signer) -> None:
    url = "/api/v2/callbacks/events"
    event = {"id": 1, "channelId": "ls-x", "event": "PUBLISH_START", "timestamp": 1599218791425}
    error(http.post(url, json=event), 401, "200")
    error(http.post(url, json=event, headers={"Authorization": "Bearer nope"}), 401, "200")
    error(http.post(f"{url}?apiKey=nope", json=event), 401, "200")
    bad = signer.headers("POST", url, secret="wrong")
    error(http.post(url, json=event, headers=bad), 401, "200")
    # Signed like every request, or with the API key in the URL (what Live Station can send).
    r = http.post(url, json=event, headers=signer.headers("POST", url))
    assert r.json() == {"accepted": 1, "duplicates": 0}
    r = http.post(f"{url}?apiKey={signer.tenant.api_key}", json={**event, "id": 2})
    assert r.json() == {"accepted": 1, "duplicates": 0}
    assert ok(signer.get(http, "/api/v2/events"))["total"] == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channelId": None}, "channelId"),
        ({"channelId": 7}, "channelId"),
        ({"event": "publish start"}, "event"),
        ({"event": None}, "event"),
        ({"logLevel": "DEBUG"}, "logLevel"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": "soon"}, "timestamp"),
        ({"id": None}, "id"),
        ({"id": True}, "id"),
        ({"id": "x" * 200}, "id"),
        ({"id": -1}, "id"),
    ],
)
def test_callback_validation(
    http: httpx.Client, signer: Signer, change: dict[str, Any], field: str
) -> None:
    event = {
        "id": 1,
        "logLevel": "INFO",
        "channelId": "ls-x",
        "event": "PUBLISH_START",
        "timestamp": 1599218791425,
    }
    event.update(change)
    event = {k: v for k, v in event.items() if v is not None}
    r = http.post("/api/v2/callbacks/events", json=[event], headers=signer.tenant.auth)
    message = error(r, 400, "100")
    assert message.startswith(f"Bad Request Exception: {field}"), message
    assert ok(signer.get(http, "/api/v2/events"))["total"] == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"id": 1.5}', "not 1.5"),
        (b'{"id": 1.0}', "not 1.0"),
        (b'{"id": {}}', "not an object"),
        (b'{"id": []}', "not an array"),
        (b'{"id": false}', "not false"),
        (b'{"id": 1000000000000000000000000000000}', "at most 18446744073709551615"),
        (b'{"id": -3}', "must not be negative"),
        (b'{"id": ""}', "is required"),
        (b"{}", "is required"),
    ],
)
def test_callback_id_of_the_wrong_type_says_what_is_wrong(
    http: httpx.Client, signer: Signer, body: bytes, words: str
) -> None:
    rest = b', "channelId": "ls-x", "event": "PUBLISH_START", "timestamp": 1599218791425}'
    payload = body[:-1] + (rest if body != b"{}" else rest[1:])
    headers = {**signer.tenant.auth, "Content-Type": "application/json"}
    r = http.post("/api/v2/callbacks/events", content=payload, headers=headers)
    message = error(r, 400, "100")
    assert message.startswith("Bad Request Exception: id: ") and words in message, message
    if words != "is required":
        assert "required" not in message


def test_callback_bad_bodies(http: httpx.Client, signer: Signer) -> None:
    url = "/api/v2/callbacks/events"
    auth = {**signer.tenant.auth, "Content-Type": "application/json"}
    for body in (b"{not json", b"[]", b"[1]", b'"text"'):
        error(http.post(url, content=body, headers=auth), 400, "100")
    # One bad callback in a list stores nothing, and says which one.
    good = {"id": 1, "channelId": "ls-x", "event": "PUBLISH_START", "timestamp": 1599218791425}
    r = http.post(url, json=[good, {**good, "id": 2, "logLevel": "x"}], headers=auth)
    assert "logLevel" in error(r, 400, "100") and "callback 1" in r.text
    assert ok(signer.get(http, "/api/v2/events"))["total"] == 0


# ------------------------------------------------------------------------------ native sessions


def test_channel_sessions_in_the_native_api(http: httpx.Client, signer: Signer) -> None:
    start = BASE
    base_ms = int(start.timestamp() * 1000)
    events = [
        ("STREAM_RESERVE", "INFO", -60_000),
        ("PUBLISH_START", "INFO", 0),
        ("ONAIR_START", "INFO", 60_000),
        ("PUBLISH_OVER_THRESHOLD", "ERROR", 90_000),
        ("ONAIR_END", "INFO", 120_000),
        ("PUBLISH_END", "INFO", 180_000),
        ("PUBLISH_START", "INFO", 600_000),
    ]
    r = http.post(
        "/api/v2/callbacks/events",
        json=[
            {
                "id": i,
                "channelId": "ls-s",
                "event": code,
                "logLevel": level,
                "timestamp": base_ms + offset,
            }
            for i, (code, level, offset) in enumerate(events)
        ],
        headers=signer.tenant.auth,
    )
    assert r.json() == {"accepted": 7, "duplicates": 0}
    auth = signer.tenant.auth
    periods = http.get("/api/v1/sessions?kind=channel&channel=ls-s", headers=auth).json()
    live, done = periods["sessions"]
    assert live["start"] == iso(start + minutes(10)) and live["end"] is None and live["live"]
    assert done["start"] == iso(start) and done["end"] == iso(start + minutes(3))
    assert done["live"] is False and done["duration_ms"] == 180_000
    assert done["recordings"] == [
        {"start": iso(start + minutes(1)), "end": iso(start + minutes(2))}
    ]
    assert done["errors"] == 1 and done["events"] == 5
    detail = http.get(f"/api/v1/sessions/channel/{done['session']}", headers=auth).json()
    assert [e["type"] for e in detail["events"]] == [code for code, _, _ in events[1:6]]
    assert [e["level"] for e in detail["events"]] == ["INFO", "INFO", "ERROR", "INFO", "INFO"]
    detail = http.get(f"/api/v1/sessions/channel/{live['session']}", headers=auth).json()
    assert detail["end"] is None and [e["type"] for e in detail["events"]] == ["PUBLISH_START"]


# ------------------------------------------------------------------------------ secrets


def test_callback_api_key_is_redacted_in_access_logs() -> None:
    from fastapi import FastAPI

    install(FastAPI())
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/api/v2/callbacks/events?x=1&apiKey=ssk_secret", "1.1", 200),
        None,
    )
    assert logging.getLogger("uvicorn.access").filter(record)
    line = record.getMessage()
    assert "ssk_secret" not in line and "apiKey=***" in line and "x=1" in line


def test_a_callback_id_too_long_names_its_own_limit(http: httpx.Client, signer: Signer) -> None:
    body = {
        "id": "x" * 117,
        "logLevel": "INFO",
        "channelId": "ls-long",
        "event": "PUBLISH_START",
        "timestamp": 1755591346586,
    }
    r = http.post("/api/v2/callbacks/events", json=body, headers=signer.tenant.auth)
    assert r.status_code == 400, r.text
    assert "at most 116 characters" in r.text
