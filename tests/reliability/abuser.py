"""Abusive clients in a process of their own (so that the well-behaved tenant measured by the
test does not share an interpreter with them): ``python -m tests.reliability.abuser BASE KEY``.
Runs until SIGTERM, then prints the status of every answer as JSON on standard output."""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import zlib
from collections import Counter
from typing import Any

import httpx


def _bomb(decoded_bytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b"[")]
    zeros = b" " * (1024 * 1024)
    parts += [packer.compress(zeros) for _ in range(decoded_bytes // len(zeros))]
    parts.append(packer.flush())
    return b"".join(parts)


def main(base: str, api_key: str) -> None:
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    bomb = _bomb(64 * 1024 * 1024)
    nested = b"[" * 100_000 + b"]" * 100_000
    big = b" " * (3 * 1024 * 1024)
    host, port = base.removeprefix("http://").split(":")

    def abuse(kind: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while not stop.is_set():
                if kind == "slow":
                    socks = [socket.create_connection((host, int(port))) for _ in range(50)]
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
                try:
                    status = client.post(
                        "/api/v1/events", content=body, headers=headers
                    ).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=abuse, args=(k,)) for k in ("bomb", "nested", "big", "slow")]
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
    main(sys.argv[1], sys.argv[2])
