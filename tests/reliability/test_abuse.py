"""Resource abuse against a ``serve`` process: gzip bombs, deep JSON, bodies past the limit,
a million-element array, huge URLs and headers, extreme paging, slow and idle connections.
Every answer a clear 4xx (in its family's shape where the request reached a route), the
server stays up and its memory bounded, and a well-behaved client keeps being answered."""

from __future__ import annotations

import gzip
import itertools
import json
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.factories import BASE, minutes, player
from tests.reliability.conftest import EXAMPLES
from tests.reliability.record import percentile, record
from tests.reliability.server import Served, cpu_s, served
from tests.reliability.shapes import TALLY, check_answer

pytestmark = pytest.mark.e2e

#: The server's peak resident memory may grow by at most this much under the abuse below
#: (the engine and the app take a few hundred MiB before it).
GROWTH_BOUND_KIB = 400 * 1024
HEAD_TIMEOUT_MS = 1000
#: Bodies refused (413, 408) one address may have in a minute before it is slowed down.
BODY_REFUSALS = 20


@contextmanager
def _abused_server(data: Path, **settings: str) -> Iterator[Served]:
    """A server for abuse: it stays up, its peak memory bounded, and nothing in its log is a
    traceback."""
    with served(
        data,
        head_timeout_ms=str(HEAD_TIMEOUT_MS),
        max_body_bytes="1048576",
        body_refusal_limit=str(BODY_REFUSALS),
        **settings,
    ) as s:
        before = s.rss_kib("VmHWM")
        yield s
        assert s.healthy(), s.log()[-3000:]
        grown = s.rss_kib("VmHWM") - before
        record("rss", before_kib=before, peak_kib=s.rss_kib("VmHWM"))
        assert grown < GROWTH_BOUND_KIB, f"peak RSS grew by {grown} KiB under abuse"
        assert "Traceback" not in s.log(), s.log()[-3000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The tests of single abuses: without the global refusal budget (each test's refusals
    would spend it for the next: tests/reliability/test_protocol_limits.py tests it)."""
    with _abused_server(tmp_path_factory.mktemp("abuse") / "data", refusal_budget_per_s="0") as s:
        yield s


@pytest.fixture(scope="module")
def tenant_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server of the well-behaved tenant under abuse: the default limits."""
    with _abused_server(tmp_path_factory.mktemp("tenant") / "data") as s:
        yield s


_sources = itertools.count(1)
ABUSER = [sys.executable, "-m"]


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    """A client of its own local address (127.0.2.N) for each test: an address whose bodies
    keep being refused is slowed down (``RefusedBodies``), and each test counts alone."""
    transport = httpx.HTTPTransport(local_address=f"127.0.2.{next(_sources)}")
    with httpx.Client(base_url=server.base, timeout=60, transport=transport) as client:
        yield client


POSTS = [
    ("/api/v1/events", "native"),
    ("/ekranapi/sessions", "ekran"),
    ("/v6/endpoint-data/user-sessions.json", "thousandeyes"),
    ("/api/v2/callbacks/events", "livestation"),
]


def _post(
    http: httpx.Client, server: Served, path: str, content: bytes, **headers: str
) -> httpx.Response:
    creds = server.creds
    target = f"{path}?apiKey={creds.api_key}" if "callbacks" in path else path
    h = {**creds.for_path("POST", target), "Content-Type": "application/json", **headers}
    response = http.post(target, content=content, headers=h)
    check_answer(response, "abuse")
    return response


def _bomb(decoded_bytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = b"[" + b" " * (1024 * 1024 - 1)
    parts = [packer.compress(chunk)]
    zeros = b" " * (1024 * 1024)
    for _ in range(decoded_bytes // len(zeros)):
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    return b"".join(parts)


def test_gzip_bomb(http: httpx.Client, server: Served) -> None:
    bomb = _bomb(512 * 1024 * 1024)  # 512 MiB of JSON whitespace in well under 1 MiB
    assert len(bomb) < 1024 * 1024
    for path, _ in POSTS:
        response = _post(http, server, path, bomb, **{"Content-Encoding": "gzip"})
        assert 400 <= response.status_code < 500, (path, response.status_code)
    for path in ("/api/v1/events", "/api/v2/callbacks/events"):  # the routes that decode gzip
        response = _post(http, server, path, bomb, **{"Content-Encoding": "gzip"})
        assert response.status_code == 413, response.text


def test_deeply_nested_json(http: httpx.Client, server: Served) -> None:
    for depth in (2_000, 200_000):
        for doc in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
            for path, _ in POSTS:
                response = _post(http, server, path, doc)
                assert response.status_code in (400, 413, 422), (path, response.status_code)


def test_bodies_over_the_limit(http: httpx.Client, server: Served) -> None:
    big = b"[" + b"0," * (2 * 1024 * 1024) + b"0]"  # 4 MiB: past twice the 1 MiB limit
    for path, _ in POSTS:
        response = _post(http, server, path, big)
        assert response.status_code in (400, 413), (path, response.status_code)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound counts what arrives
        for _ in range(64):
            yield b" " * 65536

    for path, _ in POSTS:
        creds = server.creds
        target = f"{path}?apiKey={creds.api_key}" if "callbacks" in path else path
        response = http.post(target, content=chunks(), headers=creds.for_path("POST", target))
        check_answer(response, "abuse")
        assert response.status_code in (400, 413), (path, response.status_code)


def test_a_million_element_array(http: httpx.Client, server: Served) -> None:
    array = b"[" + b",".join([b"{}"] * 1_000_000) + b"]"  # under 3 MiB
    for path, _ in POSTS:
        response = _post(http, server, path, gzip.compress(array), **{"Content-Encoding": "gzip"})
        assert 400 <= response.status_code < 500, (path, response.status_code)


def _raw_status(server: Served, head: bytes) -> int | None:
    """Send a request head over a socket; the answer's status, or None when the server
    closed the connection while it was still being sent."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        try:
            sock.sendall(head)
            answer = sock.recv(200)
        except (BrokenPipeError, ConnectionResetError):
            return None
    return int(answer.split(b" ", 2)[1]) if answer else None


def test_huge_urls_and_headers(http: httpx.Client, server: Served) -> None:
    creds = server.creds
    paths = (
        "/api/v1/sessions?kind=player&x=",
        "/v1/sessionRecent?device=",
        "/v6/endpoint-data/user-sessions?window=",
    )
    for path in paths:
        for size in (60_000, 1_000_000, 8_000_000):
            target = path + "a" * size
            headers = "".join(f"{k}: {v}\r\n" for k, v in creds.for_path("GET", target).items())
            head = f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
            status = _raw_status(server, head)
            if size > 64 * 1024:
                assert status in (414, None), (path, size, status)
            else:
                assert status is not None and 200 <= status < 500, (path, status)
    headers = {f"x-h{i}": "v" * 100 for i in range(300)}
    response = http.get("/healthz", headers=headers)
    assert response.status_code == 431
    response = http.get("/healthz", headers={"x-big": "v" * 200_000})
    assert response.status_code == 431
    assert server.healthy()


EXTREMES = [
    "/api/v1/sessions?kind=player&limit=99999999999999999999999",
    "/api/v1/sessions?kind=player&limit=-1&from=0&to=99999999999999",
    "/api/v1/timeseries?kind=player&metric=sessions&from=1970-01-01&to=9998-12-31&interval=1m",
    "/v1/sessionRecent?limit=1000000000000&startDate=0001-01-01&endDate=9999-12-31",
    "/v1/charts/playCnt?startDate=1970-01-01&endDate=9998-12-31",
    "/api/v2/events?pageNo=10000000&pageSize=100000000000",
    "/api/v2/events?pageNo=-1&pageSize=0&startTime=0&endTime=999999999999999999999",
    "/ekranapi/sessions?sessionCount=2147483648&pageIndex=9223372036854775808",
    "/ekranapi/sessions?start=0001-01-01&end=9999-12-31&pageIndex=99999999",
    "/ekranapi/user/getproductivity?start=1970-01-01&end=9998-12-31",
    "/v6/endpoint-data/user-sessions?window=99999999999999999999w",
    "/v6/endpoint-data/user-sessions?window=5000w",
    "/v6/endpoint-data/user-sessions?page=999999999999999999999",
    "/v6/endpoint-data/user-sessions?from=1970-01-01T00:00:00&to=9998-12-31T00:00:00",
]


@pytest.mark.parametrize("target", EXTREMES)
def test_extreme_paging_and_window_values(http: httpx.Client, server: Served, target: str) -> None:
    response = http.get(target, headers=server.creds.for_path("GET", target))
    check_answer(response, "abuse")


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def test_slow_and_idle_connections(http: httpx.Client, server: Served) -> None:
    host, port = server.base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(300)]
    slow = [socket.create_connection((host, int(port))) for _ in range(100)]
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        # A well-behaved client is answered meanwhile.
        for _ in range(20):
            assert http.get("/healthz").status_code == 200
        for s in slow:  # a header now and then: the head never completes
            s.sendall(b"X-a: b\r\n")
        limit = HEAD_TIMEOUT_MS / 1000 + 30
        assert all(_closed_by_server(s, limit) for s in idle + slow)
    finally:
        for s in idle + slow:
            s.close()
    assert server.healthy()


def test_an_address_that_keeps_sending_refused_bodies_is_slowed_down(
    http: httpx.Client, server: Served
) -> None:
    """Past ``SESSIONSCOPE_BODY_REFUSAL_LIMIT`` bodies refused as too large or not JSON at all,
    every request of the address is a 429 with Retry-After in its family's shape (after a
    pause, not asserted); other addresses are answered as before."""
    big = b" " * (3 * 1024 * 1024)
    for _ in range(BODY_REFUSALS // 2):
        assert _post(http, server, "/api/v1/events", b"[" * 100_000).status_code == 400
    for i in range(BODY_REFUSALS - BODY_REFUSALS // 2):
        path = POSTS[i % len(POSTS)][0]
        assert _post(http, server, path, big).status_code == 413
    for path, _ in POSTS:
        response = _post(http, server, path, b"[]")
        assert response.status_code == 429, (path, response.text)
        assert 1 <= int(response.headers["retry-after"]) <= 60
    elsewhere = httpx.HTTPTransport(local_address="127.0.3.1")
    with httpx.Client(base_url=server.base, timeout=60, transport=elsewhere) as other:
        response = other.get("/api/v1/project", headers=server.creds.native())
        assert response.status_code == 200, response.text
    assert "too many refused request bodies from 127.0.2." in server.log()


def test_a_well_behaved_tenant_during_abuse(tenant_server: Served, tmp_path: Path) -> None:
    """The tenant's reads and writes are answered while other clients abuse the server, and
    nothing it was acknowledged is lost: abusers that wait for each answer (``abuser``) from
    one address of their own (slowed down once their bodies keep being refused), then from
    250 addresses in turn (which limits per address do not slow down); then abusers that do
    not wait (``flood``: 128 connections sending as fast as they can), from one address and
    from 250; and, for comparison, the latter aimed at another server. Latency is measured
    for the report, not asserted."""
    server = tenant_server
    n = EXAMPLES * 10
    auth = server.creds.native()
    read = "/api/v1/sessions?kind=player&limit=5"
    http = httpx.Client(base_url=server.base, timeout=60)  # from 127.0.0.1

    cpu: dict[str, float] = {}  # cores used by the server and the abusive process, per run

    def timed_reads(count: int) -> list[float]:
        latencies = []
        for _ in range(count):
            began = time.perf_counter()
            response = http.get(read, headers=auth)
            latencies.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
        return latencies

    def abused(
        module: str, source: str, during: Callable[[], list[float]], target: Served | None = None
    ) -> tuple[list[float], int, int]:
        """``during()`` while a ``module`` abuser abuses ``target`` (the tenant's server)."""
        target = target or server
        abuser = subprocess.Popen(
            [*ABUSER, f"tests.reliability.{module}", target.base, target.creds.api_key, source],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert abuser.stdout is not None and abuser.stdout.readline().strip() == "ready"
            began, server_cpu, abuser_cpu = time.perf_counter(), target.cpu_s(), cpu_s(abuser.pid)
            latencies = during()
            took = time.perf_counter() - began
            run = f"{module}-{source}-{target.base}"
            cpu[f"{run}-server"] = (target.cpu_s() - server_cpu) / took
            cpu[f"{run}-abuser"] = (cpu_s(abuser.pid) - abuser_cpu) / took
        finally:
            abuser.terminate()
            out, _ = abuser.communicate(timeout=120)
        statuses = {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
        assert all(s == 0 or 400 <= s < 500 for s in statuses), statuses  # 0: dropped
        answered = sum(v for s, v in statuses.items() if s)
        TALLY[("abuse", "native", "4xx")] += answered
        return latencies, answered, statuses.get(0, 0)

    acked = 0

    def reads_and_writes() -> list[float]:
        nonlocal acked
        latencies = timed_reads(n)
        for i in range(max(4, n // 4)):
            event = player("playing", at=BASE + minutes(i), session=f"good-{acked}")
            posted = http.post("/api/v1/events", json=[event], headers=auth)
            assert posted.status_code in (200, 202), posted.text
            acked += 1
        return latencies

    with http:
        began, server_cpu = time.perf_counter(), server.cpu_s()
        quiet = timed_reads(n)
        quiet_cpu = (server.cpu_s() - server_cpu) / (time.perf_counter() - began)
        runs = {
            "abuse": abused("abuser", "127.0.0.2", reads_and_writes),
            "many": abused("abuser", "many", lambda: timed_reads(n)),
            "flood": abused("flood", "127.0.0.3", reads_and_writes),
            "flood_many": abused("flood", "many", reads_and_writes),
        }
        # The control: the same abuse aimed at another server on the machine, what the
        # abusive process alone costs the tenant (the cores it takes).
        with _abused_server(tmp_path / "control") as other:
            runs["elsewhere"] = abused("flood", "127.0.0.3", lambda: timed_reads(n), other)
            runs["elsewhere_many"] = abused("flood", "many", lambda: timed_reads(n), other)
        targets = {"elsewhere": other.base, "elsewhere_many": other.base}
        listed = http.get(
            "/api/v1/sessions?kind=player&from=2025-10-09&to=2025-10-12&limit=1000", headers=auth
        ).json()
    found = sum(1 for s in listed["sessions"] if s["session"].startswith("good-"))
    figures: dict[str, float] = {
        "requests": n,
        "quiet_p50_ms": percentile(quiet, 50) * 1000,
        "quiet_p99_ms": percentile(quiet, 99) * 1000,
        "quiet_server_cores": quiet_cpu,
    }
    sources = {"abuse": "abuser-127.0.0.2", "many": "abuser-many"}
    sources |= {"flood": "flood-127.0.0.3", "flood_many": "flood-many"}
    sources |= {"elsewhere": "flood-127.0.0.3", "elsewhere_many": "flood-many"}
    for name, run in sources.items():
        where = f"{run}-{targets.get(name, server.base)}"
        figures[f"{name}_server_cores"] = cpu[f"{where}-server"]
        figures[f"{name}_abuser_cores"] = cpu[f"{where}-abuser"]
    for name, (latencies, answered, dropped) in runs.items():
        figures[f"{name}_p50_ms"] = percentile(latencies, 50) * 1000
        figures[f"{name}_p99_ms"] = percentile(latencies, 99) * 1000
        figures[f"{name}_answered"] = answered
        figures[f"{name}_dropped"] = dropped
    record("latency", **figures)
    record("acked", category="abuse", acked=acked, lost=acked - found)
    assert found == acked


def test_a_body_that_trickles_in_is_cut_off(server: Served) -> None:
    """A client sending its body a byte at a time gets a 408 once the body timeout (twelve
    head timeouts) has passed, instead of holding its request for as long as it likes."""
    head = (
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.creds.api_key}\r\nContent-Length: 100000\r\n\r\n["
    )
    answer = b""
    with socket.create_connection(server.address(), timeout=60) as sock:
        sock.sendall(head.encode())
        deadline = time.monotonic() + HEAD_TIMEOUT_MS * 12 / 1000 + 60
        sock.settimeout(0.5)
        while not answer and time.monotonic() < deadline:
            try:
                sock.sendall(b" ")  # a byte now and then: the body never completes
                answer = sock.recv(300)
            except TimeoutError:
                continue
            except OSError:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer
