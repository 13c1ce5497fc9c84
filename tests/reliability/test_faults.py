"""Faults of the store: unreachable (a ClickHouse URL that refuses connections) or failing
mid-query. Every API family answers a clear 503 in its own shape (never a 500 or a
traceback), and the commands say in one line which store they could not reach."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sessionscope.app import create_app
from sessionscope.config import Settings
from sessionscope.ingest import Ingestor
from sessionscope.security import SecretBox
from sessionscope.store.clickhouse import ClickHouseStore, EngineProfile
from tests.conftest import EXE
from tests.reliability.conftest import Creds
from tests.reliability.shapes import check_answer, family

ROUTES = [
    "/api/v1/sessions?kind=player",
    "/api/v1/project",
    "/v1/sessionRecent",
    "/v1/charts/playCnt",
    "/api/v2/events",
    "/api/v2/channels/ls-1/events",
    "/ekranapi/sessions",
    "/ekranapi/user/getproductivity",
    "/v6/endpoint-data/user-sessions",
    "/v6/endpoint-data/user-sessions.xml",
]

CREDS = Creds(1, "ssk_0123456789ab_secret", "AK", "SK", "a@example.com", "token")


class _Failing:
    """A client whose every call fails the way the engine or the network does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


@pytest.fixture(
    params=[
        OperationalError("Error HTTPConnectionPool: [Errno 111] Connection refused"),
        DatabaseError("Code: 241. DB::Exception: Memory limit exceeded"),
    ],
    ids=["unreachable", "error-mid-query"],
)
def failing_app(
    request: pytest.FixtureRequest, settings: Settings, ingestor: Ingestor
) -> Iterator[Any]:
    error = request.param

    def connect() -> Any:
        if isinstance(error, OperationalError):
            raise error
        return _Failing(error)

    store = ClickHouseStore(connect, EngineProfile(), SecretBox(settings.secret_key))
    app = create_app(settings, store=store, ingestor=ingestor)
    yield app
    store.close()


def _get(app: Any, target: str, headers: dict[str, str]) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(target, headers=headers)

    return anyio.run(get)


@pytest.mark.parametrize("target", ROUTES)
def test_store_faults_answer_503_in_the_family_shape(failing_app: Any, target: str) -> None:
    response = _get(failing_app, target, CREDS.for_path("GET", target))
    check_answer(response, "faults", allowed=(503,))
    assert response.status_code == 503, (family(target), response.text)
    assert response.headers.get("retry-after") == "5"


def test_a_command_names_the_store_it_cannot_reach(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    env["SESSIONSCOPE_CLICKHOUSE_URL"] = "http://user:hunter2@127.0.0.1:1"
    env["SESSIONSCOPE_SECRET_KEY"] = "faults"
    for args in (["projects", "list"], ["migrate"]):
        out = subprocess.run(
            [*EXE, *args, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert out.returncode == 1, out.stderr
        assert "cannot reach the store at http://127.0.0.1:1" in out.stderr
        assert "Traceback" not in out.stderr and "hunter2" not in out.stderr


def test_deeply_nested_json_is_a_syntax_error() -> None:
    """Found by the abuse tests: msgspec's decoders recurse, and ``[[[[...]]]]`` to the ingest
    API was a 500 (RecursionError)."""
    from sessionscope.domain.events import BatchSyntaxError, decode_batch

    for doc in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        for ndjson in (False, True):
            with pytest.raises(BatchSyntaxError):
                decode_batch(doc, ndjson=ndjson)
