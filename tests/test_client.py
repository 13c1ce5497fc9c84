"""The Python client against a real server: batching, retries that never double, paging."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from sessionscope.client import AsyncClient, Client, ClientError
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import Tenant
from tests.factories import BASE, channel, iso, player


class LostAnswers(httpx.HTTPTransport):
    """Delivers every request, but loses the answer of the first ``lose`` ingest posts (as a
    dropped connection after the server stored the batch), and answers the next ``busy`` with
    a 503 of its own without delivering them."""

    def __init__(self, lose: int = 0, busy: int = 0) -> None:
        super().__init__()
        self.lose, self.busy, self.posts = lose, busy, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return super().handle_request(request)
        self.posts += 1
        if self.busy and self.lose == 0:
            self.busy -= 1
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {}})
        response = super().handle_request(request)
        response.read()
        if self.lose:
            self.lose -= 1
            raise httpx.ReadError("connection lost after the server answered")
        return response


def _events(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        player(id=f"{prefix}-{i}", session=f"{prefix}-s{i // 10}", at=BASE + timedelta(seconds=i))
        for i in range(n)
    ]


def test_send_batches_and_a_resend_stores_nothing_twice(
    base_url: str, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    events = _events("cl", 2500)
    with Client(base_url, tenant.api_key, batch_size=1000) as client:
        first = client.send(iter(events))
        again = client.send(events)
    assert (first.accepted, first.duplicates, first.batches) == (2500, 0, 3)
    assert (again.accepted, again.duplicates) == (0, 2500)
    assert loaded_store.count_events(tenant.project.id) == 2500


def test_retries_resend_the_same_events(
    base_url: str, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    transport = LostAnswers(lose=2, busy=2)
    events = _events("rt", 300)
    with Client(base_url, tenant.api_key, batch_size=100, transport=transport) as client:
        result = client.send(events)
    # The first batch reached the server twice with its answer lost, then met two 503s: the
    # answer that came back says it was all stored already, and it was, once.
    assert (result.accepted, result.duplicates) == (200, 100)
    assert transport.posts == 3 + 2 + 2
    assert loaded_store.count_events(tenant.project.id) == 300


def test_a_refused_batch_names_its_problems(base_url: str, tenant: Tenant) -> None:
    with (
        Client(base_url, tenant.api_key) as client,
        pytest.raises(ClientError) as caught,
    ):
        client.send([player(id="ok-1"), player(id="bad-1", user="someone", video_type="DVD")])
    assert caught.value.status == 400 and caught.value.code == "invalid_events"
    assert {(p["index"], p["field"]) for p in caught.value.problems} == {
        (1, "user"),
        (1, "video_type"),
    }


def test_bad_key_is_a_client_error(base_url: str) -> None:
    with Client(base_url, "ssk_nope") as client, pytest.raises(ClientError) as caught:
        client.send([player()])
    assert caught.value.status == 401


def test_sessions_follow_every_page_once(base_url: str, tenant: Tenant) -> None:
    with Client(base_url, tenant.api_key) as client:
        client.send(_events("pg", 70))  # 7 sessions
        found = [s["session"] for s in client.sessions("player", page_size=2)]
        assert sorted(found) == [f"pg-s{i}" for i in range(7)]
        one = client.session("player", "pg-s3")
        assert one["session"] == "pg-s3" and len(one["events"]) == 10
        points = client.timeseries(
            "player", "sessions", start=BASE - timedelta(hours=1), end=BASE + timedelta(hours=1)
        )
        assert sum(p["sessions"] for p in points) == 7


def test_channel_session_ids_are_quoted(base_url: str, tenant: Tenant) -> None:
    with Client(base_url, tenant.api_key) as client:
        client.send(
            [
                channel("PUBLISH_START", at=BASE, channel="ls-cl", id="c1"),
                channel("PUBLISH_END", at=BASE + timedelta(minutes=5), channel="ls-cl", id="c2"),
            ]
        )
        (listed,) = client.sessions("channel", start=iso(BASE - timedelta(hours=1)))
        assert "@" in listed["session"]
        assert client.session("channel", listed["session"])["session"] == listed["session"]


def test_async_client(base_url: str, tenant: Tenant) -> None:
    async def run() -> tuple[int, list[str]]:
        async with AsyncClient(base_url, tenant.api_key, batch_size=25) as client:
            sent = await client.send(_events("as", 60))
            names = [s["session"] async for s in client.sessions("player", page_size=4)]
            return sent.accepted, names

    accepted, names = asyncio.run(run())
    assert accepted == 60
    assert sorted(names) == [f"as-s{i}" for i in range(6)]
