"""Our side: the real server started as a process, driven over HTTP by concurrent clients.

The server runs ``sessionscope serve`` on a copy of the store, exactly as a user starts it; the
clients are httpx threads of the runner (the runner never opens the store itself).
"""

from __future__ import annotations

import functools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from common import (
    DATA_DIR,
    BenchConfig,
    Figure,
    brief,
    latency_figure,
    log,
    throughput_figure,
    timed_rounds,
)
from reads import Read, auth_headers, pages
from workload import (
    ingest_events,
    large_batch_events,
    many_client_events,
    ndjson_bodies,
    sessionscope_exe,
    single_events,
)

__all__ = ["measure_http_floor", "measure_server", "running_server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(args: list[str], log_path: Path, started_s: float) -> Iterator[str]:
    """Start a server process listening on a free port (``{port}`` in ``args``); yield its
    base URL once ``/healthz`` answers; stop it."""
    port = _free_port()
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [a.replace("{port}", str(port)) for a in args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + started_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited; see {log_path}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; see {log_path}")
                time.sleep(0.2)
            yield url
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def running_server(data_dir: Path) -> Iterator[str]:
    """Start ``sessionscope serve`` on ``data_dir``; yield its base URL; stop it."""
    args = [sessionscope_exe(), "serve", "--data-dir", str(data_dir), "--port", "{port}"]
    with _serving(args, DATA_DIR / "server.log", 180) as url:
        yield url


# ------------------------------------------------------------------------------------ reads


def _measure_read(
    http: httpx.Client, read: Read, headers: dict[str, str], cfg: BenchConfig
) -> Figure:
    """Time ``read`` (or the pages reached through its ``next``) over HTTP, one at a time."""
    found = pages(http, read, headers)
    if isinstance(found, str):
        return Figure.missing(found)

    def request(params: dict[str, str]) -> None:
        r = http.get(read.path, params=params, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"{read.path} answered {r.status_code}: {r.text[:300]}")

    steps = [functools.partial(request, params) for params in found]
    return latency_figure(timed_rounds(steps, cfg.samples))


def _measure_reads(
    url: str, data_dir: Path, project_id: int, api_key: str, read_list: list[Read], cfg: BenchConfig
) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for read in read_list:
            headers = auth_headers(read, data_dir, project_id, api_key)
            out[read.name] = _measure_read(http, read, headers, cfg)
            log(f"  ours {read.name}: {brief(out[read.name])}")
    return out


# ------------------------------------------------------------------------------------ writes


def _post_all(
    url: str, api_key: str, bodies: list[bytes], content_type: str, clients: int
) -> tuple[float, list[float], int, int]:
    """POST every body from ``clients`` threads; return wall time, latencies, accepted, dupes."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(clients):
        work.put(None)
    samples: list[float] = []
    totals = [0, 0]
    refused = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": content_type}

    def client() -> None:
        mine: list[float] = []
        accepted = duplicates = 0
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
                while (body := work.get()) is not None:
                    start = time.perf_counter()
                    r = http.post("/api/v1/events", content=body)
                    while r.status_code == 503:  # the journal at its bound: wait, resend
                        with lock:
                            refused[0] += 1
                        time.sleep(min(float(r.headers.get("retry-after", "1")), 10.0))
                        start = time.perf_counter()
                        r = http.post("/api/v1/events", content=body)
                    mine.append(time.perf_counter() - start)
                    if r.status_code != 200:
                        raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                    data: dict[str, int] = r.json()
                    accepted += data["accepted"]
                    duplicates += data["duplicates"]
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        with lock:
            samples.extend(mine)
            totals[0] += accepted
            totals[1] += duplicates

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    # Acknowledged is not yet stored: the figure counts until the journal is empty again.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        journal = httpx.get(f"{url}/healthz", timeout=30).json().get("journal") or {}
        if not journal.get("pending_events"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if refused[0]:
        log(f"    {refused[0]} requests answered 503 and were sent again after Retry-After")
    return elapsed, samples, totals[0], totals[1]


def _measure_writes(url: str, api_key: str, end: datetime, cfg: BenchConfig) -> dict[str, Figure]:
    runs = {
        "ingest_batches": ndjson_bodies(ingest_events(cfg.ingest_events, end), cfg.batch_size),
        "ingest_large_batches": ndjson_bodies(
            large_batch_events(cfg.ingest_events, end), cfg.large_batch_size
        ),
        "ingest_many_clients": ndjson_bodies(
            many_client_events(cfg.ingest_events, end), cfg.batch_size
        ),
        "ingest_single": [orjson.dumps(e) for e in single_events(cfg.single_events, end)],
    }
    out: dict[str, Figure] = {}
    for name, bodies in runs.items():
        ctype = "application/json" if name == "ingest_single" else "application/x-ndjson"
        clients = cfg.many_clients if name == "ingest_many_clients" else cfg.clients
        took, samples, accepted, dupes = _post_all(url, api_key, bodies, ctype, clients)
        note = f"{dupes} duplicates" if dupes else ""
        out[name] = throughput_figure(accepted, took, samples, note, requests=len(bodies))
        log(f"  ours {name}: {brief(out[name])}")
    return out


def measure_http_floor(cfg: BenchConfig, end: datetime) -> dict[str, dict[str, Any]]:
    """Post the batch runs to ``null_server.py`` (the HTTP stack alone) from the same clients."""
    script = Path(__file__).resolve().parent / "null_server.py"
    bodies = ndjson_bodies(ingest_events(cfg.ingest_events, end), cfg.batch_size)
    out: dict[str, Figure] = {}
    with _serving([sys.executable, str(script), "{port}"], DATA_DIR / "floor.log", 60) as url:
        for name, clients in (("batches", cfg.clients), ("many_clients", cfg.many_clients)):
            took, samples, accepted, _ = _post_all(
                url, "none", bodies, "application/x-ndjson", clients
            )
            out[f"http_floor_{name}"] = throughput_figure(
                accepted, took, samples, requests=len(bodies)
            )
            log(f"  HTTP floor, {clients} clients: {brief(out[f'http_floor_{name}'])}")
    return {k: v.as_dict() for k, v in out.items()}


def measure_server(
    data_dir: Path,
    cfg: BenchConfig,
    end: datetime,
    project_ids: dict[str, int],
    api_keys: dict[str, str],
    read_list: list[Read],
) -> dict[str, dict[str, Any]]:
    """Start the server on ``data_dir`` and measure every read, then ingest."""
    with running_server(data_dir) as url:
        out = _measure_reads(url, data_dir, project_ids["bench"], api_keys["bench"], read_list, cfg)
        out.update(_measure_writes(url, api_keys["bench-ingest"], end, cfg))
    return {k: v.as_dict() for k, v in out.items()}
