"""A ``sessionscope serve`` process with credentials of every kind, for abuse and fault tests."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import EXE, cli_json, free_port
from tests.reliability.conftest import Creds


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    creds: Creds
    output: Any

    def rss_kib(self, field: str = "VmRSS") -> int:
        """The server's resident memory (``VmHWM``: its peak so far), KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field}")

    def cpu_s(self) -> float:
        """CPU time the server has used so far (user and system), seconds."""
        return cpu_s(self.proc.pid)

    def address(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        self.output.seek(0)
        return str(self.output.read().decode(errors="replace"))


def cpu_s(pid: int) -> float:
    """CPU time process ``pid`` has used so far (user and system), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    env.update({"SESSIONSCOPE_SECRET_KEY": "reliability-secret", "SESSIONSCOPE_ACCESS_LOG": "0"})
    env.update(extra)
    return env


@contextmanager
def served(data: Path, **settings: str) -> Iterator[Served]:
    """Serve ``data`` (made with one project ``a`` and its credentials) in its own process."""
    env = _env({f"SESSIONSCOPE_{k.upper()}": v for k, v in settings.items()})
    project = cli_json(data, "projects", "create", "a", "--organization", "a", env=env)
    key = cli_json(data, "keys", "create", "-p", "a", env=env)["api_key"]
    ncp = cli_json(data, "keys", "create", "-p", "a", "--ncp", env=env)
    user = cli_json(data, "users", "create", "a@example.com", "-p", "a", env=env)
    creds = Creds(
        project["id"], key, ncp["access_key"], ncp["secret_key"], user["email"], user["token"]
    )
    port = free_port()
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*EXE, "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = Served(f"http://127.0.0.1:{port}", proc, creds, output)
    try:
        deadline = time.monotonic() + 60
        while not server.healthy():
            assert proc.poll() is None, server.log()[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
