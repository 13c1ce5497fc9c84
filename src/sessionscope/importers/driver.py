"""What every importer shares: the vendor's HTTP client (credentials, rate limits, retries),
the resumable state file, deterministic event ids and the sink that stores events.

An importer (one module per vendor) is a function ``run(job)`` that walks the vendor's API
through ``job.http``, hands rebuilt events to ``job.emit`` and calls ``job.checkpoint`` with
what it has finished: the sink stores every emitted event (durably, through the ingest journal)
before the state file records the checkpoint, so a run cut short resumes from the last
checkpoint and, the event ids being fixed by the vendor's data, stores nothing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event, validate_batch

__all__ = [
    "BadCredentials",
    "ImportFailed",
    "Job",
    "RateLimitedHttp",
    "StateFile",
    "event_id",
    "state_path",
]

#: Longest wait for one rate-limit window or ``Retry-After`` (a vendor asking for more is
#: waited on again after it).
MAX_WAIT_S = 120.0
#: Attempts for a request that fails in a way worth retrying (429, 502, 503, 504, network).
ATTEMPTS = 8
_RETRY_STATUS = frozenset({429, 502, 503, 504})


class ImportFailed(Exception):
    """The import cannot go on; the message says why in one line (never a secret)."""


class BadCredentials(ImportFailed):
    """The vendor refused the credentials (401) or the account (403)."""


def event_id(vendor: str, *parts: object) -> str:
    """A deterministic event id: the same vendor data always gives the same id."""
    text = "\x1f".join(str(p) for p in (vendor, *parts))
    return f"import-{vendor}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


# ------------------------------------------------------------------------------ HTTP


class RateLimitedHttp:
    """An httpx client for one vendor that retries what is safe to retry, waits when the
    vendor says so (``429`` with ``Retry-After``, ThousandEyes' ``X-Organization-Rate-Limit-*``
    headers) and turns ``401``/``403`` into :class:`BadCredentials`."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        sign: Callable[[httpx.Request], None] | None = None,
        credentials_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self._sign = sign
        self._hint = credentials_hint
        self._sleep = sleep
        self.requests = 0
        self.waited_s = 0.0
        #: When the vendor's budget allows the next request (epoch seconds), if it said.
        self._not_before: float | None = None
        self._answered = False
        self._client = httpx.Client(
            base_url=self.base_url, headers=dict(headers or {}), auth=auth, timeout=timeout
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RateLimitedHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), MAX_WAIT_S)
        if seconds > 0:
            self.waited_s += seconds
            self._sleep(seconds)

    def _note_budget(self, response: httpx.Response) -> None:
        """ThousandEyes' organisation budget: with nothing left, the next request waits until
        the window resets (this answer is used meanwhile: what it brings is stored first)."""
        remaining = response.headers.get("X-Organization-Rate-Limit-Remaining")
        reset = response.headers.get("X-Organization-Rate-Limit-Reset")
        if remaining is None or reset is None:
            return
        with contextlib.suppress(ValueError):
            if int(remaining) <= 0:
                self._not_before = float(reset) + 0.5

    def _respect_budget(self) -> None:
        if self._not_before is not None:
            wait, self._not_before = self._not_before - time.time(), None
            self._wait(wait)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        value = response.headers.get("Retry-After", "")
        with contextlib.suppress(ValueError):
            return float(value)
        reset = response.headers.get("X-Organization-Rate-Limit-Reset")
        if reset is not None:
            with contextlib.suppress(ValueError):
                return float(reset) - time.time() + 0.5
        return float(min(2**attempt, 30))

    def request(self, method: str, url: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """Send a request and return its JSON answer; retry, wait and refuse as above. With
        ``missing_ok``, a ``404`` answers None (a session gone since it was listed)."""
        for attempt in range(ATTEMPTS):
            self._respect_budget()
            request = self._client.build_request(method, url, **kwargs)
            if self._sign is not None:
                self._sign(request)
            self.requests += 1
            try:
                response = self._client.send(request)
            except httpx.TransportError as exc:
                # Never reached at all (a wrong --url, nothing listening): said at once; a
                # connection lost later is tried again.
                first_contact = not self._answered and isinstance(exc, httpx.ConnectError)
                if first_contact or attempt == ATTEMPTS - 1:
                    raise ImportFailed(
                        f"{self.vendor}: cannot reach {self.base_url}: {type(exc).__name__}"
                        + (f" ({exc})" if first_contact and str(exc) else "")
                    ) from None
                self._wait(min(2**attempt, 30))
                continue
            self._answered = True
            self._note_budget(response)
            if response.status_code in (401, 403):
                what = "credentials" if response.status_code == 401 else "account"
                raise BadCredentials(
                    f"{self.vendor}: {self.base_url} refused the {what} "
                    f"(HTTP {response.status_code}){'; ' + self._hint if self._hint else ''}"
                )
            if response.status_code in _RETRY_STATUS and attempt < ATTEMPTS - 1:
                self._wait(self._retry_after(response, attempt))
                continue
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code >= 400:
                raise ImportFailed(
                    f"{self.vendor}: {method} {request.url.path} answered HTTP "
                    f"{response.status_code}: {response.text[:300]}"
                )
            try:
                return response.json()
            except ValueError:
                raise ImportFailed(
                    f"{self.vendor}: {request.url.path} did not answer JSON"
                ) from None
        raise ImportFailed(f"{self.vendor}: gave up after {ATTEMPTS} attempts")  # pragma: no cover


# ------------------------------------------------------------------------------ state


def state_path(data_dir: Path, vendor: str, *identity: object) -> Path:
    """Where the state of one import lives: ``<data dir>/imports/<vendor>-<hash>.json``, the
    hash naming the source, the project and the range (so another import starts afresh)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in identity).encode()).hexdigest()[:16]
    return Path(data_dir) / "imports" / f"{vendor}-{digest}.json"


@dataclass
class StateFile:
    """A JSON object kept in a file, replaced atomically at every save."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StateFile:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            raise ImportFailed(f"cannot read the import state {path}; remove it") from None
        return cls(path, data if isinstance(data, dict) else {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump(self.data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


# ------------------------------------------------------------------------------ the job

#: Stores validated events of one project; returns (accepted, duplicates).
Submit = Callable[[list[Event]], tuple[int, int]]


@dataclass
class Job:
    """One import run: the vendor client, the local project, the state and the sink."""

    http: RateLimitedHttp
    project: Project
    state: StateFile
    submit: Submit
    start: datetime | None = None
    end: datetime | None = None
    #: Told of every advance of a progress line (the counts so far come first on a resumed
    #: run, see :attr:`done_before`).
    on_progress: Callable[[str, int], None] = lambda _what, _n: None
    #: Says how many items a progress line will reach, when the vendor tells.
    expect: Callable[[str, int], None] = lambda _what, _n: None
    batch_size: int = 2000
    accepted: int = 0
    duplicates: int = 0
    sessions: int = 0
    skipped: int = 0
    #: What the user should know (printed as warnings at the end).
    notes: list[str] = field(default_factory=list)
    _pending: list[dict[str, Any]] = field(default_factory=list)
    #: What each progress line had reached at the checkpoint this run resumes from.
    done_before: dict[str, int] = field(init=False, default_factory=dict)
    _counts: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        saved = self.state.data.get("progress")
        if isinstance(saved, dict):
            self.done_before = {str(k): v for k, v in saved.items() if isinstance(v, int)}
        self._counts = dict(self.done_before)

    def progress(self, what: str, n: int) -> None:
        """Advance a progress line by ``n`` items (recorded with the next checkpoint, so a
        resumed run's bar goes on from there)."""
        self._counts[what] = self._counts.get(what, 0) + n
        self.on_progress(what, n)

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Queue rebuilt events (in the ingest format, with their ids) for storing."""
        self._pending.extend(events)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        events, problems = validate_batch(batch, now=datetime.now(UTC))
        if problems:
            first = problems[0]
            raise ImportFailed(
                f"a rebuilt event is invalid ({len(problems)} problem(s)); first: "
                f"{first.field} {first.message} in {batch[first.index]!r:.300}"
            )
        accepted, duplicates = self.submit(events)
        self.accepted += accepted
        self.duplicates += duplicates

    def checkpoint(self, **values: Any) -> None:
        """Store what was emitted, then record ``values`` in the state file."""
        self.flush()
        self.state.data.update(values)
        self.state.data["progress"] = dict(self._counts)
        self.state.save()

    def done(self) -> None:
        self.checkpoint(finished=True)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
