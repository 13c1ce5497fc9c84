"""Abusive clients that do not wait for their answers, in a process of their own:
``python -m tests.reliability.flood BASE KEY SOURCE [CONNECTIONS]``.

CONNECTIONS connections at once (128 unless given) from the local address SOURCE
(``127.0.0.3``) or, with ``many``, from 250 addresses (127.0.4.1 ..., the next one at every new
connection), each sending its requests as fast as the socket takes them, without waiting for
the answers (which another task reads and counts): gzip bombs, 100 000-deep JSON and JSON that
is not JSON pipelined on a kept-alive connection, and heads declaring a body past the limit
(the server closes those connections: a new one replaces each). Runs until SIGTERM, then
prints the status of every answer as JSON on standard output (0: a connection the server
closed or refused with no answer, or one it reset)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import sys
from collections import Counter

from tests.reliability.abuser import gzip_bomb

STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
#: Kinds of request (``FLOOD_KINDS`` chooses some), one per connection in turn.
KINDS = ("bomb", "nested", "invalid", "big")


def _request(kind: str, api_key: str) -> bytes:
    body = {
        "bomb": gzip_bomb(64 * 1024 * 1024),
        "nested": b"[" * 100_000 + b"]" * 100_000,
        "invalid": b'{"kind": "player", "time": ',
        "big": b"",
    }[kind]
    length = 3 * 1024 * 1024 if kind == "big" else len(body)
    head = (
        "POST /api/v1/events HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Length: {length}\r\n"
        + ("Content-Encoding: gzip\r\n" if kind == "bomb" else "")
        + "\r\n"
    )
    return head.encode() + body


async def main(base: str, api_key: str, source: str, connections: int) -> None:
    host, port = base.removeprefix("http://").split(":")
    sources = [f"127.0.4.{i}" for i in range(1, 251)] if source == "many" else [source]
    addresses = itertools.cycle(sources)
    kinds = os.environ.get("FLOOD_KINDS", ",".join(KINDS)).split(",")
    requests = {kind: _request(kind, api_key) for kind in kinds}
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def read(reader: asyncio.StreamReader) -> int:
        answers = 0
        tail = b""
        while chunk := await reader.read(65536):
            data = tail + chunk
            for match in STATUS.finditer(data):
                statuses[int(match.group(1))] += 1
                answers += 1
            tail = data[-16:]
        return answers

    async def connection(kind: str) -> None:
        request = requests[kind]
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    host, int(port), local_addr=(next(addresses), 0)
                )
            except OSError:
                statuses[0] += 1
                await asyncio.sleep(0.01)
                continue
            reading = asyncio.ensure_future(read(reader))
            reading.add_done_callback(lambda t: t.cancelled() or t.exception())
            try:
                while not stop.is_set() and not reading.done():
                    writer.write(request)  # the next one without waiting for an answer
                    await writer.drain()
                    if kind == "big":  # the server closes it after its answer
                        break
                if kind == "big":
                    await asyncio.wait_for(reading, 30)
            except (OSError, TimeoutError):
                pass
            finally:
                writer.close()
            if not reading.done():
                reading.cancel()
            elif reading.exception() is not None or reading.result() == 0:
                statuses[0] += 1  # closed (or reset) without a single answer

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.ensure_future(connection(kinds[i % len(kinds)])) for i in range(connections)]
    print("ready", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({str(k): v for k, v in statuses.items()}), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else 128))
