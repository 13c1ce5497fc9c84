"""What the HTTP protocol of ``serve`` refuses before the app (``api.server``, ``api.guard``):
a declared body past the bound (413) and an address past its limit of refused bodies (429),
in the family's error shape; too many connections from one address; requests pipelined past
the bound; and, past the global refusal budget, the requests of refused clients closed
unanswered while other clients are served. Real server process, real sockets; nothing here
asserts on time."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.factories import BASE, minutes, player
from tests.reliability.server import Served, served
from tests.reliability.shapes import check_answer

pytestmark = pytest.mark.e2e

MAX_CONNECTIONS = 8
BODY_REFUSALS = 6
#: A declared body past twice the 1 MiB limit.
OVERSIZE = 3 * 1024 * 1024

#: A path of each API family, and its method.
FAMILIES = [
    ("POST", "/api/v1/events"),
    ("POST", "/ekranapi/sessions"),
    ("POST", "/v6/endpoint-data/user-sessions.json"),
    ("POST", "/api/v2/callbacks/events"),
    ("GET", "/v1/sessionRecent"),
    ("POST", "/login"),
]

FLOOD = [sys.executable, "-m", "tests.reliability.flood"]

_addresses = itertools.count(1)


def _address() -> str:
    """A local address of its own for each use: limits are per address."""
    return f"127.0.6.{next(_addresses)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(
        tmp_path_factory.mktemp("protocol") / "data",
        max_body_bytes="1048576",
        body_refusal_limit=str(BODY_REFUSALS),
        max_connections_per_address=str(MAX_CONNECTIONS),
        refusal_budget_per_s="0",
    ) as s:
        yield s
        assert "Traceback" not in s.log(), s.log()[-3000:]


def _connect(server: Served, source: str) -> socket.socket:
    sock = socket.create_connection(server.address(), timeout=30, source_address=(source, 0))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it closed or reset
    it without a word)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _read_one(sock: socket.socket) -> bytes:
    """One answer (head and body) read from ``sock``; b"" if it was closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _response(raw: bytes, method: str, path: str) -> httpx.Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    request = httpx.Request(method, f"http://x{path}")
    return httpx.Response(status, headers=headers, content=body, request=request)


def _oversize_head(server: Served, method: str, path: str) -> bytes:
    target = f"{path}?apiKey={server.creds.api_key}" if "callbacks" in path else path
    credentials = server.creds.for_path(method, target)
    headers = "".join(f"{k}: {v}\r\n" for k, v in credentials.items())
    return (
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {OVERSIZE}\r\n\r\n"
    ).encode()


def _send(server: Served, source: str, data: bytes) -> bytes:
    with _connect(server, source) as sock:
        sock.sendall(data)
        return _read_all(sock)


def test_a_declared_body_past_the_bound_is_refused_in_the_family_shape(server: Served) -> None:
    for method, path in FAMILIES:
        raw = _send(server, _address(), _oversize_head(server, method, path))
        response = _response(raw, method, path)
        check_answer(response, "abuse")
        assert response.status_code == 413, (path, raw[:300])
        assert response.headers["connection"] == "close"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_an_address_past_its_limit_is_answered_429_by_the_protocol(server: Served) -> None:
    source = _address()
    for _ in range(BODY_REFUSALS):
        raw = _send(server, source, _oversize_head(server, "POST", "/api/v1/events"))
        assert raw.startswith(b"HTTP/1.1 413 "), raw[:300]
    for method, path in FAMILIES:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]".encode()
        raw = _send(server, source, head)
        response = _response(raw, method, path)
        check_answer(response, "abuse")
        assert response.status_code == 429, (path, raw[:300])
        assert 1 <= int(response.headers["retry-after"]) <= 60
    # Another address is served.
    transport = httpx.HTTPTransport(local_address=_address())
    with httpx.Client(base_url=server.base, transport=transport, timeout=30) as other:
        assert other.get("/api/v1/project", headers=server.creds.native()).status_code == 200


def _served_healthz(sock: socket.socket) -> bool:
    """Whether a request on ``sock`` is answered 200 (False: closed without an answer)."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(200).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def test_connections_past_the_limit_of_an_address_are_closed(server: Served) -> None:
    source = _address()
    with ExitStack() as stack:
        held = [stack.enter_context(_connect(server, source)) for _ in range(MAX_CONNECTIONS)]
        assert all(_served_healthz(s) for s in held)  # each one is open and served
        with _connect(server, source) as extra:
            assert not _served_healthz(extra)  # closed as it was accepted
        # Other addresses are not limited by it.
        with _connect(server, _address()) as other:
            assert _served_healthz(other)
        stack.close()
    # Once they are closed, the address connects again.
    for _ in range(50):
        with _connect(server, source) as again:
            if _served_healthz(again):
                break
    else:
        raise AssertionError("the address could not connect again")


def _bytes_taken(sock: socket.socket, cap: int) -> int:
    """How much of an endless request body ``sock`` takes (up to ``cap`` bytes) before the
    server closes it, or before a send waits two seconds: what the kernel's buffers hold,
    unless the server reads what arrives."""
    sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
    sock.settimeout(2)
    chunk = b" " * (1024 * 1024)
    sent = 0
    try:
        while sent < cap:
            sent += sock.send(chunk)
    except (TimeoutError, OSError):  # the buffers are full, or the server closed it
        pass
    return sent


def test_a_connection_closed_unanswered_is_not_read_before(server: Served) -> None:
    """A connection past the limit is held (unread) before it is closed: what its client sends
    meanwhile stays in the kernel's buffers (uvloop started reading it after the guard had
    paused it: a flooding client had every packet read, and thrown away)."""
    source = _address()
    cap = 256 * 1024 * 1024
    with ExitStack() as stack:
        for _ in range(MAX_CONNECTIONS):
            stack.enter_context(_connect(server, source))
        with _connect(server, source) as extra:
            assert _bytes_taken(extra, cap) < cap // 4
    assert server.healthy()


def test_trusted_proxies_are_not_limited(server: Served) -> None:
    """127.0.0.1 is a trusted proxy (uvicorn's default ``FORWARDED_ALLOW_IPS``)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(_connect(server, "127.0.0.1")) for _ in range(30)]
        assert all(_served_healthz(s) for s in socks)


def test_pipelined_requests_are_answered_in_order_up_to_the_bound(server: Served) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(server, _address()) as sock:
        sock.sendall(request * 5 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = _read_all(sock)
    assert answers.count(b"HTTP/1.1 200 ") == 6, answers[:500]
    with _connect(server, _address()) as sock:
        sock.sendall(request * 200)
        answers = _read_all(sock)
    assert answers.count(b"HTTP/1.1 ") < 200  # closed: no queue of 200 requests
    assert server.healthy()


@pytest.fixture(scope="module")
def budget_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One refusal a second in all, and a limit per address it never reaches here."""
    with served(
        tmp_path_factory.mktemp("budget") / "data",
        max_body_bytes="1048576",
        body_refusal_limit="1000",
        refusal_budget_per_s="1",
    ) as s:
        yield s
        assert "Traceback" not in s.log(), s.log()[-3000:]


def _invalid_json(server: Served) -> bytes:
    body = b'{"kind": "player", '
    return (
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.creds.api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_past_the_refusal_budget_refused_clients_are_closed_unanswered(
    budget_server: Served,
) -> None:
    server = budget_server
    source = _address()
    answers = []
    for _ in range(5):
        with _connect(server, source) as sock:
            for _ in range(2):  # the second on the same connection, once the first is answered
                try:
                    sock.sendall(_invalid_json(server))
                    answers.append(_read_one(sock))
                except OSError:  # reset: closed as it was accepted
                    answers.append(b"")
    statuses = [a[9:12] for a in answers]
    assert statuses[0] == b"400", answers[0]
    assert all(s in (b"400", b"") for s in statuses), statuses  # a 400 or nothing
    assert b"" in statuses  # the budget spent, requests of this refused address were closed
    metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
    withheld = [line for line in metrics.splitlines() if line.startswith("sessionscope_unanswered")]
    assert withheld and float(withheld[0].split()[-1]) >= 1, withheld
    # An address with nothing refused is served meanwhile, the refused one's answers are 4xx.
    transport = httpx.HTTPTransport(local_address=_address())
    with httpx.Client(base_url=server.base, transport=transport, timeout=30) as other:
        assert other.get("/api/v1/project", headers=server.creds.native()).status_code == 200


def test_a_well_behaved_client_is_served_while_clients_that_do_not_wait_abuse(
    budget_server: Served,
) -> None:
    server = budget_server
    flood = subprocess.Popen(
        [*FLOOD, server.base, server.creds.api_key, "many", "64"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout is not None and flood.stdout.readline().strip() == "ready"
        transport = httpx.HTTPTransport(local_address=_address())
        with httpx.Client(base_url=server.base, transport=transport, timeout=60) as client:
            for i in range(20):
                response = client.get("/api/v1/project", headers=server.creds.native())
                assert response.status_code == 200, response.text
                event = player("playing", at=BASE + minutes(i), session=f"served-{i}")
                posted = client.post("/api/v1/events", json=[event], headers=server.creds.native())
                assert posted.status_code == 200, posted.text
    finally:
        flood.terminate()
        out, _ = flood.communicate(timeout=120)
    statuses = {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    assert all(s == 0 or 400 <= s < 500 for s in statuses), statuses
    assert server.healthy()
