"""Abusive clients in a process of their own (so that the well-behaved tenant measured by the
test does not share an interpreter with them): ``python -m tests.reliability.abuser BASE KEY
[SOURCE]``, connecting from the local address SOURCE (``127.0.0.2``: another client than the
tenant's ``127.0.0.1``; ``many``: from 250 addresses in turn). Runs until SIGTERM, then prints
the status of every answer as JSON on standard output (0: the connection was dropped)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sys
import threading
import zlib
from collections import Counter
from typing import Any

import httpx


def gzip_bomb(decoded_bytes: int) -> bytes:
    """A gzip body that inflates to ``decoded_bytes`` of a JSON array never closed."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b"[")]
    zeros = b" " * (1024 * 1024)
    parts += [packer.compress(zeros) for _ in range(decoded_bytes // len(zeros))]
    parts.append(packer.flush())
    return b"".join(parts)


def main(base: str, api_key: str, source: str = "127.0.0.2") -> None:
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    bomb = gzip_bomb(64 * 1024 * 1024)
    nested = b"[" * 100_000 + b"]" * 100_000
    big = b" " * (3 * 1024 * 1024)
    host, port = base.removeprefix("http://").split(":")
    # ``many``: every request from the next of 250 local addresses (127.0.1.1 ...): abusers
    # that limits per client address do not slow down.
    sources = [f"127.0.1.{i}" for i in range(1, 251)] if source == "many" else [source]

    def abuse(kind: str) -> None:
        clients: dict[str, httpx.Client] = {}
        try:
            run(kind, clients)
        finally:
            for client in clients.values():
                client.close()

    def run(kind: str, clients: dict[str, httpx.Client]) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            address = sources[n % len(sources)]
            if kind == "slow":
                socks = [
                    socket.create_connection((host, int(port)), source_address=(address, 0))
                    for _ in range(50)
                ]
                for s in socks:
                    s.sendall(b"GET / HTTP/1.1\r\n")
                stop.wait(0.5)
                for s in socks:
                    s.close()
                continue
            headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
            body = {"bomb": bomb, "nested": nested, "big": big}[kind]
            if kind == "bomb":
                headers["Content-Encoding"] = "gzip"
            client = clients.get(address)
            if client is None:  # plain HTTP: no certificates to load for each of them
                transport = httpx.HTTPTransport(local_address=address, verify=False)
                client = clients[address] = httpx.Client(
                    base_url=base, timeout=60, transport=transport
                )
            try:
                code = client.post("/api/v1/events", content=body, headers=headers).status_code
            except httpx.TransportError:
                code = 0
            with lock:
                statuses[code] += 1

    # ``ABUSE_KINDS`` (comma-separated) runs some of them only: to see what each costs.
    kinds = os.environ.get("ABUSE_KINDS", "bomb,nested,big,slow").split(",")
    threads = [threading.Thread(target=abuse, args=(k,)) for k in kinds]
    for t in threads:
        t.start()

    def finish(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    print("ready", flush=True)
    stop.wait()
    for t in threads:
        t.join(60)
    print(json.dumps({str(k): v for k, v in statuses.items()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
