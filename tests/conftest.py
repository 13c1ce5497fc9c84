"""Shared fixtures: one embedded store per test process, the real app served over HTTP.

chDB runs one engine per process, so every test of a run shares one data directory and one
store; tests stay independent by creating their own project (``new_project``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn

from sessionscope.app import create_app
from sessionscope.config import Settings
from sessionscope.domain.accounts import Project
from sessionscope.ingest import Ingestor, open_ingestor
from sessionscope.store.clickhouse import ClickHouseStore, open_store

EXE = [sys.executable, "-m", "sessionscope"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sessionscope-data")


@pytest.fixture(scope="session")
def server_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def settings(data_dir: Path, server_port: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        secret_key="test-secret",
        port=server_port,
        public_url=f"http://127.0.0.1:{server_port}",
        # Every test of a run shares this server and one client address, and many send bad
        # credentials on purpose: the limit on refused credentials per address
        # (``api.attempts``) is tested with its own apps (tests/reliability/test_guessing.py
        # and test_abuse.py).
        auth_failure_limit=1_000_000,
        # Likewise for refused bodies (``api.limits.BodyRefusals``), off here: each answer
        # refusing a body would wait a quarter second, and fuzzing sends thousands
        # (tests/reliability/test_abuse.py tests it with a server of its own).
        body_refusal_limit=0,
    )


@pytest.fixture(scope="session")
def store(settings: Settings) -> Iterator[ClickHouseStore]:
    st = open_store(settings)
    yield st
    st.close()


@pytest.fixture(scope="session")
def ingestor(settings: Settings, store: ClickHouseStore) -> Iterator[Ingestor]:
    """The data directory's ingest journal, its writer and its loader (one per data dir)."""
    ing = open_ingestor(settings, store)
    yield ing
    ing.close()


class _Loaded:
    """The store as a request sees it: every read first waits for the ingest journal's loader
    (what was acknowledged before it is in the store)."""

    def __init__(self, store: ClickHouseStore, ingestor: Ingestor) -> None:
        self._store, self._ingestor = store, ingestor

    def __getattr__(self, name: str) -> object:
        assert self._ingestor.barrier(), "the loader did not catch up in time"
        return getattr(self._store, name)


@pytest.fixture
def loaded_store(store: ClickHouseStore, ingestor: Ingestor) -> ClickHouseStore:
    """``store`` for tests that read what they sent over HTTP or through the CLI."""
    return cast(ClickHouseStore, _Loaded(store, ingestor))


@pytest.fixture(scope="session")
def base_url(settings: Settings, store: ClickHouseStore, ingestor: Ingestor) -> Iterator[str]:
    """The real app served by uvicorn on a free port, in a background thread."""
    app = create_app(settings, store=store, ingestor=ingestor)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{settings.port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class Tenant:
    project: Project
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


_counter = itertools.count(1)


@pytest.fixture
def new_project(store: ClickHouseStore, request: pytest.FixtureRequest) -> Callable[[], Tenant]:
    """Create a fresh project with an API key (unique name per call)."""

    def make() -> Tenant:
        name = f"{request.node.name[:60]}-{next(_counter)}-{time.monotonic_ns() % 100000}"
        project = store.create_project(name)
        return Tenant(project, store.create_api_key(project.id))

    return make


@pytest.fixture
def tenant(new_project: Callable[[], Tenant]) -> Tenant:
    return new_project()


def cli_json(data_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """``sessionscope ARGS --data-dir DATA_DIR --json`` in a process of its own, with no
    ``SESSIONSCOPE_*`` variable but ``env``'s; its JSON output."""
    own_env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    own_env.update(env or {})
    out = subprocess.run(
        [*EXE, *args, "--data-dir", str(data_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=own_env,
    )
    return json.loads(out.stdout)


@contextmanager
def serve_process(
    data_dir: Path,
    *args: str,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """``sessionscope serve`` on ``data_dir`` (and ``args``) in its own process; yield its URL
    once healthy. Its output goes to ``log_path`` when given; ``env`` are its only
    ``SESSIONSCOPE_*`` variables."""
    port = free_port()
    own_env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    own_env.update(env or {})
    # Its output goes to a file: a pipe nobody reads would fill with access-log lines and
    # block the server.
    # Closed once the server has stopped.
    output = tempfile.TemporaryFile() if log_path is None else log_path.open("w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [*EXE, "serve", "--data-dir", str(data_dir), "--port", str(port), *args],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=own_env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError(f"server exited: {output.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become healthy in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
