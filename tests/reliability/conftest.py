"""Credentials of every kind for one project with data of every kind, and signing helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sessionscope.domain.events import validate_batch
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.factories import BASE, channel, desktop, endpoint, minutes, player

#: Examples per fuzzed route or parser: small in ``make test``, large in ``make fuzz``.
EXAMPLES = int(os.environ.get("SESSIONSCOPE_FUZZ_EXAMPLES", "8"))

_names = itertools.count(1)


@dataclass(frozen=True)
class Creds:
    project_id: int
    api_key: str
    access_key: str
    secret_key: str
    te_email: str
    te_token: str
    #: In every free-text field of the project's events (see ``make_creds``).
    label: str = ""

    def native(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def vpe(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "x-project-id": str(self.project_id)}

    def ekran(self) -> dict[str, str]:
        return {"ApiKey": self.api_key}

    def thousandeyes(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.te_email}:{self.te_token}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}

    def livestation(self, method: str, target: str, timestamp: str | None = None) -> dict[str, str]:
        """Signature v2 headers of ``method`` and ``target`` (path and query, as sent)."""
        ts = timestamp if timestamp is not None else str(time.time_ns() // 1_000_000)
        message = f"{method} {target}\n{ts}\n{self.access_key}".encode()
        digest = hmac.new(self.secret_key.encode(), message, hashlib.sha256).digest()
        return {
            "x-ncp-apigw-timestamp": ts,
            "x-ncp-iam-access-key": self.access_key,
            "x-ncp-apigw-signature-v2": base64.b64encode(digest).decode(),
        }

    def for_path(self, method: str, target: str) -> dict[str, str]:
        """The credentials the API family of ``target`` takes."""
        from tests.reliability.shapes import family

        kind = family(target.split("?", 1)[0])
        if kind == "livestation":
            return self.livestation(method, target)
        return {
            "native": self.native,
            "vpe": self.vpe,
            "ekran": self.ekran,
            "thousandeyes": self.thousandeyes,
        }.get(kind, self.native)()


def make_creds(store: ClickHouseStore, ingestor: Ingestor, label: str) -> Creds:
    name = label = f"{label}{next(_names)}x{time.monotonic_ns() % 100000}"
    project = store.create_project(name, organization=name)
    api_key = store.create_api_key(project.id)
    access_key, secret_key = store.create_signing_key(project.id)
    email = f"{name}@example.com"
    token = store.create_user(email, [project.id])
    user = str(uuid.uuid5(uuid.NAMESPACE_DNS, label))  # a viewer of its own
    desk = zlib.crc32(label.encode()) % 1_000_000 + 1  # a desktop session id of its own
    raw = [  # the label in every free-text field: a leak of this project's data shows
        *(
            player(
                t,
                at=BASE + minutes(i),
                session=f"{label}-p",
                origin=f"https://{label}.example",
                user=user,
            )
            for i, t in enumerate(
                ["player_start", "startup", "playing", "rebuffering", "error", "ended"]
            )
        ),
        channel("PUBLISH_START", channel=f"ls-{label}"),
        channel("PUBLISH_END", at=BASE + minutes(30), channel=f"ls-{label}"),
        *(
            desktop(t, at=BASE + minutes(m), session=desk, user_name=label, client_name=label)
            for t, m in (("login", 0), ("activity", 5), ("logout", 50))
        ),
        endpoint(session=f"{label}-e", visited_site=f"{label}.example", title=label),
        endpoint(
            at=BASE + minutes(1),
            session=f"{label}-e",
            page_id="p2",
            visited_site=f"{label}.example",
        ),
    ]
    events, problems = validate_batch(raw, now=datetime.now(UTC))
    assert not problems, problems
    ingestor.submit(project.id, events)
    assert ingestor.barrier()
    return Creds(project.id, api_key, access_key, secret_key, email, token, name)


@pytest.fixture(scope="session")
def creds(store: ClickHouseStore, ingestor: Ingestor) -> Creds:
    return make_creds(store, ingestor, "fuzz")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The tally of answers, for ``make reliability``'s report."""
    from tests.reliability.record import record
    from tests.reliability.shapes import TALLY

    record("tally", rows=[[c, f, s, n] for (c, f, s), n in sorted(TALLY.items())])
