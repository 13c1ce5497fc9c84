"""Ingest against a peer: sessionscope and ActivityWatch's aw-server, same client, same run.

``python bench/ingest_peer.py [--report PATH] [--seconds N]`` starts both servers as processes on
free 127.0.0.1 ports (sessionscope on a fresh data directory, aw-server from a venv of its own
under ``bench/.data/aw-venv``, created on first use, its data under ``bench/.data``), drives
them with one client and prints the figures as JSON (also kept in
``bench/.data/ingest-peer.json`` and, when present, in ``last-run.json``). With ``--report``
it refreshes its section of that report. ``run.py`` runs it as a phase of ``make bench``.

What is measured, on both servers alike:

1. single events, one client, one request after another;
2. single events, ``--clients`` (8) concurrent clients: requests/s and ack latency;
3. 10,000-event batches, one client, a few batches;
4. sustained ingest, ``--clients`` clients posting ``--sustained-batch``-event batches for
   ``--seconds`` (sessionscope; aw-server ``--aw-seconds``), with sessionscope's journal depth
   (``/healthz`` ``journal.pending_events``, null while absent) sampled every second;

and, for reference, the engine's ceiling (``store.insert_events`` with 100,000-event lists in
a child process, no HTTP) and the HTTP floor (``null_server.py``: uvicorn and FastAPI reading
the body and answering).

The client is an asyncio loop on raw sockets in a process of its own (one keep-alive
connection per client); every request is built before timing, as a template whose only
per-request change is a fixed-width counter written into each event's id and title, so no
event repeats (sessionscope would count it a duplicate; aw-server would merge a heartbeat
whose data equals the last one's). The 10,000-event batches, a fixed number of requests, are
built whole before timing: writing the counters into a 3 MB body takes about 2 ms, client
work that would count against the faster server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from common import DATA_DIR, Figure, brief, cpu_probe_ms, in_child, log, throughput_figure

__all__ = ["PeerConfig", "main", "measure_peer"]

#: Replaced in every request by a per-connection counter of the same width.
TOKEN = b"~~~~~~~~~~"
_TOKEN_S = TOKEN.decode()
_COUNTER = b"%010d"
AW_VENV = DATA_DIR / "aw-venv"
#: aw-server pins old Flask/peewee; its own venv keeps them away from the project's.
AW_REQUIREMENTS = ("aw-server", "peewee<3.18")
_APPS = ("code.exe", "chrome.exe", "outlook.exe", "excel.exe", "slack.exe", "terminal")
_TITLES = ("report.docx", "Inbox", "budget.xlsx", "#general", "main.py", "build log")
_SECTION = "## Ingest against aw-server"


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Sizes of the phase (every loop is bounded by a count and a time)."""

    #: Sustained ingest into sessionscope, seconds.
    seconds: float = 60.0
    #: Sustained ingest into aw-server, seconds.
    aw_seconds: float = 30.0
    #: Each single-event run, seconds (and at most ``single_max`` requests).
    single_seconds: float = 15.0
    single_max: int = 50_000
    clients: int = 8
    #: 10,000-event batches posted (after one untimed).
    batches: int = 5
    batch_size: int = 10_000
    #: Events per request of the sustained run.
    sustained_batch: int = 1000
    #: 100,000-event inserts timed for the engine ceiling (after a small untimed one).
    ceiling_inserts: int = 4
    ceiling_size: int = 100_000

    @classmethod
    def from_env(cls) -> PeerConfig:
        raw = os.environ.get("BENCH_PEER_SECONDS", "").strip()
        return cls(seconds=float(raw)) if raw else cls()


# ------------------------------------------------------------------------------ the client


@dataclass(frozen=True, slots=True)
class Load:
    """One measurement for the client process: what to send, how long, from how many."""

    port: int
    #: Whole HTTP requests; client ``i`` sends ``templates[i % len(templates)]`` with
    #: ``TOKEN`` replaced by its request counter.
    templates: list[bytes]
    events_per_request: int
    clients: int
    seconds: float
    max_requests: int
    warmup: int
    #: Sum ``accepted``/``duplicates`` from the answers (sessionscope's and the floor's).
    parse_accepted: bool
    #: Every request (``warmup + max_requests`` per client) built before the clock starts:
    #: for large bodies, where putting the counters in (about 2 ms for a 3 MB body) would
    #: otherwise count against the server measured, more so the faster it is.
    prebuilt: bool = False


@dataclass(slots=True)
class LoadResult:
    requests: int = 0
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    #: Requests and events sent in all, warm-up included (what the server must hold).
    sent_requests: int = 0
    sent_events: int = 0
    client_cpu_s: float = 0.0
    #: Answers 503 (the server's journal full: the client waits Retry-After and resends).
    refused: int = 0
    error: str = ""


class _Conn:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        #: The last answer's Retry-After (seconds; 1 when it had none).
        self.retry_after = 1.0

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        self.retry_after = 1.0
        at = lower.find(b"\r\nretry-after:")
        if at >= 0:
            with contextlib.suppress(ValueError):
                self.retry_after = float(lower[at + 14 : lower.index(b"\r\n", at + 2)])
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
            body = await reader.readexactly(length)
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            body = b"".join(parts)
        else:
            body = await reader.read()
            await self.close()
        if b"\r\nconnection: close" in lower or (
            head.startswith(b"HTTP/1.0") and b"\r\nconnection: keep-alive" not in lower
        ):
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _drive(load: Load) -> LoadResult:
    out = LoadResult()
    conns = [_Conn(load.port) for _ in range(load.clients)]
    counters = [0] * load.clients
    timed = [False]
    deadline = [0.0]
    issued = [0]

    def build(i: int, k: int) -> bytes:
        return load.templates[i % len(load.templates)].replace(TOKEN, _COUNTER % k)

    built = [
        [build(i, k) for k in range(load.warmup + load.max_requests)] if load.prebuilt else []
        for i in range(load.clients)
    ]

    async def one(i: int) -> None:
        k = counters[i]
        data = built[i][k] if k < len(built[i]) else build(i, k)
        counters[i] += 1
        start = time.perf_counter()
        status, body = await conns[i].request(data)
        while status == 503:  # as a real client does: wait as told, send the same batch
            out.refused += 1
            await asyncio.sleep(min(conns[i].retry_after, 10.0))
            start = time.perf_counter()
            status, body = await conns[i].request(data)
        took = time.perf_counter() - start
        out.sent_requests += 1
        out.sent_events += load.events_per_request
        if status != 200:
            raise RuntimeError(f"answered {status}: {body[:300]!r}")
        if load.parse_accepted:
            answer = orjson.loads(body)
            out.accepted += answer["accepted"]
            out.duplicates += answer["duplicates"]
        if timed[0]:
            out.latencies_s.append(took)
            out.requests += 1

    async def warm(i: int) -> None:
        for _ in range(load.warmup):
            await one(i)

    async def run(i: int) -> None:
        while issued[0] < load.max_requests and time.perf_counter() < deadline[0]:
            issued[0] += 1
            await one(i)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(warm(i) for i in range(load.clients))), load.seconds + 600
        )
        timed[0] = True
        cpu = time.process_time()
        start = time.perf_counter()
        deadline[0] = start + load.seconds
        await asyncio.wait_for(
            asyncio.gather(*(run(i) for i in range(load.clients))), load.seconds + 600
        )
        out.wall_s = time.perf_counter() - start
        out.client_cpu_s = time.process_time() - cpu
    except Exception as exc:  # reported to the parent, which stops
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        for conn in conns:
            await conn.close()
    return out


def drive(load: Load) -> LoadResult:
    """Run ``load`` (in the client process) and return what happened."""
    return asyncio.run(_drive(load))


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A whole ``POST`` request with a JSON body (``TOKEN`` in it keeps its width)."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ------------------------------------------------------------------------------ the events


def _base_ms() -> int:
    """Event times start 12 hours ago (10,000 one-second events stay in the past)."""
    return (int(time.time()) - 12 * 3600) * 1000


def ss_event(tag: str, client: int, i: int, base_ms: int) -> dict[str, Any]:
    """A desktop activity event for sessionscope; ``TOKEN`` in its id and title."""
    return {
        "id": f"{tag}-c{client}-{_TOKEN_S}-{i}",
        "kind": "desktop",
        "time": base_ms + i * 1000,
        "type": "activity",
        "duration_ms": 1000,
        "session": 1 + client,
        "user_id": 100 + client,
        "user_name": f"bench user {client}",
        "client_guid": f"6f1c2a7e-0000-4000-8000-{client:012d}",
        "client_name": f"bench-host-{client}",
        "app": _APPS[i % len(_APPS)],
        "title": f"{_TITLES[i % len(_TITLES)]} #{_TOKEN_S}-{i}",
    }


def aw_event(tag: str, client: int, i: int, base_ms: int) -> dict[str, Any]:
    """The same activity as an aw-server event (``TOKEN`` in its title: data never repeats)."""
    stamp = datetime.fromtimestamp((base_ms + i * 1000) / 1000, UTC)
    return {
        "timestamp": stamp.isoformat(),
        "duration": 1.0,
        "data": {
            "app": _APPS[i % len(_APPS)],
            "title": f"{_TITLES[i % len(_TITLES)]} #{tag}-{_TOKEN_S}-{i}",
            "host": f"bench-host-{client}",
        },
    }


class Peer:
    """How one server is asked to store events."""

    name = ""
    parse_accepted = False

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.pid = pid

    def single(self, tag: str, client: int, base_ms: int) -> bytes:
        raise NotImplementedError

    def batch(self, tag: str, client: int, size: int, base_ms: int) -> bytes:
        raise NotImplementedError


class Sessionscope(Peer):
    name = "sessionscope"
    parse_accepted = True

    def __init__(self, port: int, pid: int, api_key: str) -> None:
        super().__init__(port, pid)
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def single(self, tag: str, client: int, base_ms: int) -> bytes:
        body = orjson.dumps(ss_event(tag, client, 0, base_ms))
        return http_request(self.port, "/api/v1/events", body, self.headers)

    def batch(self, tag: str, client: int, size: int, base_ms: int) -> bytes:
        body = orjson.dumps([ss_event(tag, client, i, base_ms) for i in range(size)])
        return http_request(self.port, "/api/v1/events", body, self.headers)


class AwServer(Peer):
    name = "aw-server"

    def bucket(self, client: int) -> str:
        return f"bench-window-{client}"

    def single(self, tag: str, client: int, base_ms: int) -> bytes:
        path = f"/api/0/buckets/{self.bucket(client)}/heartbeat?pulsetime=60"
        return http_request(self.port, path, orjson.dumps(aw_event(tag, client, 0, base_ms)), {})

    def batch(self, tag: str, client: int, size: int, base_ms: int) -> bytes:
        body = orjson.dumps([aw_event(tag, client, i, base_ms) for i in range(size)])
        return http_request(self.port, f"/api/0/buckets/{self.bucket(client)}/events", body, {})


class NullServer(Peer):
    """``null_server.py``: answers ``{"accepted": 1}`` for a JSON object."""

    name = "http-floor"
    parse_accepted = True

    def single(self, tag: str, client: int, base_ms: int) -> bytes:
        body = orjson.dumps(ss_event(tag, client, 0, base_ms))
        return http_request(self.port, "/api/v1/events", body, {})


# ------------------------------------------------------------------------------ processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(
    port: int, path: str, timeout: float = 10, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _post_json(port: int, path: str, value: Any) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", path, orjson.dumps(value), headers={"Content-Type": "application/json"}
        )
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _process(
    args: list[str], port: int, health: str, log_path: Path, env: dict[str, str], start_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server; yield it once ``health`` answers 200; stop it (also on error)."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + start_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited; see {log_path}")
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if _get(port, health, timeout=2)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start; see {log_path}")
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(c for c, parent in parents.items() if parent == p)
    return total


def ensure_aw_venv() -> Path:
    """Return aw-server's executable, creating its venv under ``bench/.data`` on first use."""
    exe = AW_VENV / "bin" / "aw-server"
    if exe.exists():
        return exe
    log(f"installing aw-server into {AW_VENV} (once)")
    shutil.rmtree(AW_VENV, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(AW_VENV)], check=True)
    subprocess.run(
        [str(AW_VENV / "bin" / "pip"), "install", "-q", *AW_REQUIREMENTS],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return exe


def _aw_version() -> str:
    proc = subprocess.run(
        [str(AW_VENV / "bin" / "aw-server"), "--version"], capture_output=True, text=True
    )
    return proc.stdout.strip() or "unknown"


@contextlib.contextmanager
def sessionscope_server(data_dir: Path) -> Iterator[Sessionscope]:
    """A fresh data dir, project ``bench`` and a key; ``sessionscope serve`` on it."""
    from workload import cli, sessionscope_exe

    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    cli("projects", "create", "bench", "--data-dir", str(data_dir))
    key = cli("keys", "create", "--project", "bench", "--data-dir", str(data_dir))["api_key"]
    port = _free_port()
    args = [sessionscope_exe(), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = DATA_DIR / "peer-sessionscope.log"
    with _process(args, port, "/healthz", log_path, env, 180) as proc:
        yield Sessionscope(port, proc.pid, key)


@contextlib.contextmanager
def aw_server(home: Path, clients: int) -> Iterator[AwServer]:
    """aw-server (production mode, SQLite through peewee) with its data under ``home``."""
    exe = ensure_aw_venv()
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(home)}
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        (home / sub).mkdir(parents=True)
        env[var] = str(home / sub)
    env.pop("AW_PROFILE", None)
    port = _free_port()
    args = [str(exe), "--host", "127.0.0.1", "--port", str(port)]
    log_path = DATA_DIR / "peer-aw-server.log"
    with _process(args, port, "/api/0/info", log_path, env, 120) as proc:
        peer = AwServer(port, proc.pid)
        for c in range(clients):
            status, body = _post_json(
                port,
                f"/api/0/buckets/{peer.bucket(c)}",
                {"client": "sessionscope-bench", "type": "currentwindow", "hostname": f"h{c}"},
            )
            if status != 200:
                raise RuntimeError(f"aw-server bucket create answered {status}: {body[:200]!r}")
        yield peer


@contextlib.contextmanager
def null_server() -> Iterator[NullServer]:
    port = _free_port()
    args = [sys.executable, str(Path(__file__).resolve().parent / "null_server.py"), str(port)]
    log_path = DATA_DIR / "peer-floor.log"
    with _process(args, port, "/healthz", log_path, dict(os.environ), 60) as proc:
        yield NullServer(port, proc.pid)


# ------------------------------------------------------------------------------ measuring


class JournalSampler:
    """Sample ``/healthz`` ``journal.pending_events`` every second (null while absent)."""

    def __init__(self, port: int, read: tuple[str, dict[str, str]] | None = None) -> None:
        self.port = port
        #: A read (path, headers) timed after each sample: how long a read waits for the
        #: loader (read-after-write) while the load goes on.
        self.read = read
        self.read_ms: list[float] = []
        self.samples: list[tuple[float, int | None, float]] = []
        self.journal_seen: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JournalSampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sample(self) -> int | None:
        at = time.monotonic()
        pending: int | None = None
        try:
            status, body = _get(self.port, "/healthz", timeout=10)
            took = time.monotonic() - at
            journal = orjson.loads(body).get("journal") if status == 200 else None
            if isinstance(journal, dict):
                self.journal_seen = journal
                value = journal.get("pending_events")
                pending = int(value) if isinstance(value, int | float) else None
        except (OSError, http.client.HTTPException, ValueError):
            took = time.monotonic() - at
        self.samples.append((round(at - self._start, 2), pending, round(took * 1000, 1)))
        if self.read is not None:
            path, headers = self.read
            begun = time.monotonic()
            try:
                status, _ = _get(self.port, path, timeout=60, headers=headers)
                if status == 200:
                    self.read_ms.append(round((time.monotonic() - begun) * 1000, 1))
            except (OSError, http.client.HTTPException):
                pass
        return pending

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - self._start) % 1.0))

    def drain(self, limit_s: float) -> float | None:
        """Wait (at most ``limit_s``) until nothing is pending; seconds waited, or None."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            last = self.samples[-1][1] if self.samples else None
            if last is None or last == 0:
                return round(time.monotonic() - start, 1) if last == 0 else None
            time.sleep(0.5)
        return None


def settle(peer: Peer, limit_s: float = 60.0) -> float:
    """Wait until ``peer`` is done with its last measurement: its journal empty (when it has
    one) and its process idle. Otherwise its loading and the engine's merges would run during
    the other server's next measurement, on the same two cores. Returns the seconds waited."""
    start = time.monotonic()
    sampler = JournalSampler(peer.port)
    while time.monotonic() - start < limit_s:
        pending = sampler.sample()
        before = process_cpu_s(peer.pid)
        time.sleep(0.5)
        if not pending and (process_cpu_s(peer.pid) - before) / 0.5 < 0.05:
            break
    return round(time.monotonic() - start, 1)


def _run_load(peer: Peer, load: Load, name: str) -> tuple[Figure, LoadResult]:
    cpu = process_cpu_s(peer.pid)
    result: LoadResult = in_child(drive, load)
    server_cpu = process_cpu_s(peer.pid) - cpu
    if result.error:
        raise RuntimeError(f"{peer.name} {name}: {result.error}")
    if peer.parse_accepted and (result.accepted != result.sent_events or result.duplicates):
        raise RuntimeError(
            f"{peer.name} {name}: sent {result.sent_events} events, accepted "
            f"{result.accepted}, {result.duplicates} duplicates"
        )
    events = result.requests * load.events_per_request
    figure = throughput_figure(
        events,
        result.wall_s,
        result.latencies_s,
        requests=result.requests,
        requests_per_s=result.requests / result.wall_s if result.wall_s else None,
        clients=load.clients,
        events_per_request=load.events_per_request,
        request_bytes=len(load.templates[0]),
        client_cpu_us_per_request=round(result.client_cpu_s / max(1, result.requests) * 1e6),
        client_cpu_share=round(result.client_cpu_s / result.wall_s, 3) if result.wall_s else None,
        server_cpu_s=round(server_cpu, 2),
        server_cpu_share=round(server_cpu / result.wall_s, 3) if result.wall_s else None,
        sent_events=result.sent_events,
        refused=result.refused,
    )
    refused = f", {result.refused} answered 503 and sent again" if result.refused else ""
    log(f"  {peer.name} {name}: {brief(figure)}; {result.requests} requests{refused}")
    return figure, result


def _singles(peer: Peer, cfg: PeerConfig, clients: int, tag: str) -> Figure:
    base = _base_ms()
    load = Load(
        port=peer.port,
        templates=[peer.single(tag, c, base) for c in range(clients)],
        events_per_request=1,
        clients=clients,
        seconds=cfg.single_seconds,
        max_requests=cfg.single_max,
        warmup=5,
        parse_accepted=peer.parse_accepted,
    )
    return _run_load(peer, load, f"single events, {clients} client(s)")[0]


def _big_batches(peer: Peer, cfg: PeerConfig) -> Figure:
    load = Load(
        port=peer.port,
        templates=[peer.batch("b10k", 0, cfg.batch_size, _base_ms())],
        events_per_request=cfg.batch_size,
        clients=1,
        seconds=600,
        max_requests=cfg.batches,
        warmup=1,
        parse_accepted=peer.parse_accepted,
        prebuilt=True,
    )
    return _run_load(peer, load, f"{cfg.batch_size:,}-event batches")[0]


def _sustained(peer: Peer, cfg: PeerConfig, seconds: float, journal: bool) -> Figure:
    base = _base_ms()
    load = Load(
        port=peer.port,
        templates=[peer.batch("sus", c, cfg.sustained_batch, base) for c in range(cfg.clients)],
        events_per_request=cfg.sustained_batch,
        clients=cfg.clients,
        seconds=seconds,
        max_requests=10_000_000,
        warmup=1,
        parse_accepted=peer.parse_accepted,
    )
    if not journal:
        return _run_load(peer, load, f"sustained {seconds:g} s")[0]
    read = None
    if isinstance(peer, Sessionscope):
        # A time series, as a dashboard polls it: it waits for the loader like any read and
        # costs little itself. (Listing desktop sessions reads every event of each listed
        # session, and here each client's one session grows by 2,500 events a second: that
        # read measured its own cost and took most of the server's Python time.)
        read = ("/api/v1/timeseries?kind=desktop", peer.headers)
    with JournalSampler(peer.port, read) as sampler:
        figure, result = _run_load(peer, load, f"sustained {seconds:g} s")
        drain = sampler.drain(max(60.0, seconds))
    pending = [p for _, p, _ in sampler.samples if p is not None]
    # Events stored per second: until the journal was empty again (when it has one).
    stored_s = result.wall_s + drain if drain is not None else None
    extra = {
        **figure.extra,
        "journal_samples": sampler.samples,
        "journal_present": sampler.journal_seen is not None,
        "journal_last": sampler.journal_seen,
        "pending_max": max(pending) if pending else None,
        "drain_s": drain,
        "stored_events_per_s": figure.count / stored_s if stored_s else None,
        "read_ms": sampler.read_ms,
        "healthz_p99_ms": (
            sorted(s[2] for s in sampler.samples)[int(0.99 * (len(sampler.samples) - 1))]
            if sampler.samples
            else None
        ),
    }
    if sampler.journal_seen is None:
        extra["stored_events_per_s"] = figure.events_per_s
    return Figure(**{**figure.as_dict(), "extra": extra})


def _aw_count(peer: AwServer, clients: int) -> int:
    total = 0
    for c in range(clients):
        status, body = _get(peer.port, f"/api/0/buckets/{peer.bucket(c)}/events/count", 60)
        if status != 200:
            raise RuntimeError(f"aw-server count answered {status}")
        total += int(orjson.loads(body))
    return total


def engine_ceiling(data_dir: str, project_id: int, inserts: int, size: int) -> dict[str, Any]:
    """Time ``store.insert_events`` with ``size``-event lists (in a child process)."""
    from sessionscope.config import load_settings
    from sessionscope.store.clickhouse import open_store
    from workload import build_events

    def events(n: int, round_: int) -> list[Any]:
        base = _base_ms()
        tag = f"{round_:010d}"
        items = []
        for i in range(n):
            e = ss_event("ceil", i % 64, i, base)
            e["id"] = e["id"].replace(_TOKEN_S, tag)
            e["title"] = e["title"].replace(_TOKEN_S, tag)
            items.append(e)
        return build_events(items)

    store = open_store(load_settings(data_dir=data_dir))
    try:
        store.insert_events(project_id, events(10_000, 0))  # untimed: opens everything
        samples, total = [], 0
        for r in range(1, inserts + 1):
            batch = events(size, r)
            start = time.perf_counter()
            accepted, _ = store.insert_events(project_id, batch)
            samples.append(time.perf_counter() - start)
            total += accepted
        if total != inserts * size:
            raise RuntimeError(f"engine ceiling: {total} of {inserts * size} events stored")
        return throughput_figure(total, sum(samples), samples, inserts=inserts).as_dict()
    finally:
        store.close()


def _measure_ceiling(cfg: PeerConfig) -> Figure:
    from workload import cli

    path = DATA_DIR / "peer-ceiling"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        project = int(cli("projects", "create", "bench", "--data-dir", str(path))["id"])
        figure = Figure.from_dict(
            in_child(engine_ceiling, str(path), project, cfg.ceiling_inserts, cfg.ceiling_size)
        )
    finally:
        shutil.rmtree(path, ignore_errors=True)
    log(f"  engine ceiling: {brief(figure)}")
    return figure


def measure_peer(cfg: PeerConfig) -> dict[str, Any]:
    """Run the whole phase; return its figures (plain JSON)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    probe = cpu_probe_ms()
    ours: dict[str, Figure] = {}
    peer: dict[str, Figure] = {}
    floor: dict[str, Figure] = {}
    notes: list[str] = []
    aw_version = ""
    try:
        ensure_aw_venv()
        aw_version = _aw_version()
        aw_ok = True
    except (OSError, subprocess.CalledProcessError) as exc:
        aw_ok = False
        notes.append(f"aw-server could not be installed: {exc}")
        log(f"  aw-server not available: {exc}")
    with contextlib.ExitStack() as stack:
        log("ingest against aw-server: starting both servers")
        ss = stack.enter_context(sessionscope_server(DATA_DIR / "peer-sessionscope"))
        aw = (
            stack.enter_context(aw_server(DATA_DIR / "peer-aw-home", cfg.clients))
            if aw_ok
            else None
        )
        # Measurements 1-3 alternate between the servers (the machine's speed drifts).
        settled: list[float] = []
        for name, fn in (
            ("single_1", lambda p: _singles(p, cfg, 1, "s1")),
            ("single_n", lambda p: _singles(p, cfg, cfg.clients, "sn")),
            ("batch_10k", lambda p: _big_batches(p, cfg)),
        ):
            ours[name] = fn(ss)
            waited = settle(ss)
            if aw is not None:
                peer[name] = fn(aw)
                waited += settle(aw)
            settled.append(waited)
        notes.append(
            "before each measurement, the server measured last was left to finish its work "
            f"(journal empty, process idle): {', '.join(f'{w:g}' for w in settled)} s"
        )
        # aw-server's sustained run first: sessionscope's leaves merges (and a journal) behind.
        if aw is not None:
            peer["sustained"] = _sustained(aw, cfg, cfg.aw_seconds, journal=False)
            stored = _aw_count(aw, cfg.clients)
            sent = sum(f.extra["sent_events"] for f in peer.values())
            if stored != sent:
                raise RuntimeError(f"aw-server holds {stored} events, {sent} were sent")
            notes.append(f"aw-server holds all {stored:,} events sent (events/count per bucket)")
        ours["sustained"] = _sustained(ss, cfg, cfg.seconds, journal=True)
    for used in ("peer-sessionscope", "peer-aw-home"):  # stopped: only the logs are kept
        shutil.rmtree(DATA_DIR / used, ignore_errors=True)
    log("the HTTP floor: single events to null_server.py")
    with null_server() as null:
        floor["single_1"] = _singles(null, cfg, 1, "f1")
        floor["single_n"] = _singles(null, cfg, cfg.clients, "fn")
    log("the engine ceiling: store.insert_events with 100,000-event lists, no HTTP")
    ceiling = _measure_ceiling(cfg)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "config": {
            "seconds": cfg.seconds,
            "aw_seconds": cfg.aw_seconds,
            "single_seconds": cfg.single_seconds,
            "clients": cfg.clients,
            "batches": cfg.batches,
            "batch_size": cfg.batch_size,
            "sustained_batch": cfg.sustained_batch,
            "ceiling_inserts": cfg.ceiling_inserts,
            "ceiling_size": cfg.ceiling_size,
        },
        "cpu_probe_ms": [probe, cpu_probe_ms()],
        "aw_server_version": aw_version,
        "sessionscope": {k: v.as_dict() for k, v in ours.items()},
        "aw_server": {k: v.as_dict() for k, v in peer.items()},
        "floor": {k: v.as_dict() for k, v in floor.items()},
        "ceiling": ceiling.as_dict(),
        "notes": notes,
    }


# ------------------------------------------------------------------------------ entry


def save(result: dict[str, Any]) -> None:
    """Keep the figures in ``ingest-peer.json`` and in ``last-run.json`` (for ``--rerender``)."""
    (DATA_DIR / "ingest-peer.json").write_text(json.dumps(result, indent=2))
    last = DATA_DIR / "last-run.json"
    if last.exists():
        data = json.loads(last.read_text())
        data["ingest_peer"] = result
        last.write_text(json.dumps(data, indent=2))


def main(argv: list[str] | None = None) -> int:
    default = PeerConfig.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="refresh this report's section")
    parser.add_argument("--seconds", type=float, default=default.seconds)
    parser.add_argument("--aw-seconds", type=float, default=default.aw_seconds)
    parser.add_argument("--single-seconds", type=float, default=default.single_seconds)
    parser.add_argument("--clients", type=int, default=default.clients)
    parser.add_argument("--batches", type=int, default=default.batches)
    parser.add_argument("--sustained-batch", type=int, default=default.sustained_batch)
    parser.add_argument("--ceiling-inserts", type=int, default=default.ceiling_inserts)
    parser.add_argument(
        "--rerender", action="store_true", help="refresh --report from ingest-peer.json only"
    )
    args = parser.parse_args(argv)
    from report import refresh_peer_section

    if args.rerender:
        if args.report is None:
            parser.error("--rerender needs --report")
        refresh_peer_section(args.report, json.loads((DATA_DIR / "ingest-peer.json").read_text()))
        return 0
    for name in ("seconds", "aw_seconds", "single_seconds", "clients", "batches"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    cfg = PeerConfig(
        seconds=args.seconds,
        aw_seconds=args.aw_seconds,
        single_seconds=args.single_seconds,
        clients=args.clients,
        batches=args.batches,
        sustained_batch=args.sustained_batch,
        ceiling_inserts=args.ceiling_inserts,
    )
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr, figures to stdout
        result = measure_peer(cfg)
        save(result)
        if args.report is not None:
            refresh_peer_section(args.report, result)
            log(f"section refreshed in {args.report}")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
